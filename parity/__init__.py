"""The parity harness: proof that an implementation with scratch's API computes what torch.nn
computes, outputs, final states and every gradient, over the whole configuration space.

    python -m parity --profile ci            # the project's own scratch (make parity)
    python -m parity --impl path/to/copy     # a student's copy of scratch/
    python -m parity zoo OUT_DIR             # the wrong implementations the harness must catch

Modules: case (a configuration and its arrays), strategies (Hypothesis), pinned (fixed cases),
tolerances (the one place for them), reference (the torch side), impl (loading and running the
implementation under test), compare (one comparison and its report), runner, summary, cli,
zoo (the wrong implementations).

Nothing is imported here, so that ``python -m parity`` can pin threads before NumPy loads.
"""
