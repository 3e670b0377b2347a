"""The sandboxed side of the grader: run a student's extracted exercise code on the hidden tests' inputs.

Started by the grader as ``python -I -S runner.py JOB_DIR SITE_PACKAGES`` in a folder of its own that
holds only this file, ``plain.py``, ``job.json`` (the student's code and the inputs) and, as it runs,
``results.jsonl``. It knows no expected value and judges nothing: it writes each answer, as plain data,
one line per test, and the grader compares. Nothing here is trusted by the grader.
"""

import json
import sys
import traceback


def main() -> None:
    job_dir, site = sys.argv[1], sys.argv[2]
    sys.path[:0] = [job_dir]
    sys.path.append(site)
    with open(f"{job_dir}/job.json") as handle:
        job = json.load(handle)
    import torch

    torch.set_num_threads(int(job.get("threads", 1)))
    import plain

    out = open(f"{job_dir}/results.jsonl", "a", buffering=1)

    def write(record):
        out.write(json.dumps(record) + "\n")
        out.flush()

    namespace = {"__name__": "submission"}
    try:
        exec(compile(job["code"], "submission.py", "exec"), namespace)  # noqa: S102 - the sandbox's purpose
    except BaseException as err:  # noqa: BLE001 - report, never crash
        write({"load_error": f"{type(err).__name__}: {err}"})
        return
    for phase in ("tests", "scale"):
        for task in job["tasks"]:
            name = task["exercise"]
            fn = namespace.get(name)
            for index, test in enumerate(task.get(phase, [])):
                record = {"exercise": name, "phase": phase, "index": index}
                try:
                    if not callable(fn):
                        raise NameError(f"no function named {name!r} in your notebook")
                    args = [plain.decode(a) for a in test["args"]]
                    value = fn(*args)
                    if test.get("reduce"):
                        value = plain.reduce_answer(value, test["reduce"], args)
                    record["value"] = plain.answer(value)
                except NotImplementedError:
                    record["error"] = "NotImplementedError"
                    record["not_done"] = True
                except BaseException as err:  # noqa: BLE001 - the student's error is a result
                    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
                    where = f" (line {frame.lineno} of {frame.name})" if frame and frame.filename == "submission.py" else ""
                    record["error"] = f"{type(err).__name__}: {str(err)[:300]}{where}"
                write(record)


if __name__ == "__main__":
    main()
