"""The parity harness, the student's check and the grader, around one table.

``spec`` is the table: the study functions (those the handout cuts out of ``scratch/``) with
their levels, modes, callees and the items grading each, and the items; ``case`` holds the
cases (``FunctionCase`` for a cell and a direction, ``Case`` for a layer, each item's public
cases), ``calls`` what an item calls on a case and how an answer is judged and worded, ``diff``
the one comparator and finite-difference routine, ``tolerances`` every tolerance. On these,
``check`` is the student's check, which ``handout`` ships with them; ``cli`` runs the parity
harness: ``strategies`` and ``pinned`` (its cases), ``reference`` (the torch side), ``impl``
(loading the implementation under test), ``compare``, ``runner``, ``summary``, ``units`` (the
other public functions and the cell functions) and ``training`` (whole training runs); ``zoo``
holds the wrong implementations; ``grading`` is the grader, which imports the rest and is
imported by nothing here but ``__main__``, the one dispatcher of the command line:

    python -m parity --profile ci            # the project's own scratch (make parity)
    python -m parity --impl path/to/copy     # a student's copy of scratch/
    python -m parity check [DIR]             # a student's check (the grader's visible items)
    python -m parity zoo OUT_DIR             # the wrong implementations the harness must catch
    python -m parity grade DIR               # the grader (see docs/grading.md)

Nothing is imported here, so that ``python -m parity`` can pin threads before NumPy loads.
"""
