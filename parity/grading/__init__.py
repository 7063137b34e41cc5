"""Grading coursework with the parity harness: skeleton, grade, grade-all, Gradescope,
PrairieLearn.

    skeleton   the student version of scratch/ (``markers``, ``skeleton``)
    grade      one submission, item by item, each item in a walled child process
               (``items``, ``cases``, ``rubric``, ``grade``, ``session``, ``child``,
               ``protocol``, ``oracles``, ``diff``, ``report``)
    grade-all  many submissions in parallel, one gradebook (``batch``)
    bundle     the Gradescope autograder zip (``gradescope``), a PrairieLearn question and
               its grading command (``prairielearn``)
    preflight  the reference graded on one item behind the wall before anyone is
               (``preflight``)

The commands live in ``cli``; docs/grading.md is the instructor's guide. Nothing is imported
here: the child process copies ``child.py`` and ``protocol.py`` alone.
"""
