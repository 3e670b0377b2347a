"""The instructor's side of assessment: the student release and the grader with its hidden tests.

Not part of the student release (``make student-release`` leaves this folder out). ``python -m grading``
grades a folder of notebooks (`grader`); ``python -m grading.release`` writes the student release
(`release`). The hidden tests and the points table are in `hidden`; the sandbox in `sandbox` and `runner`.
"""
