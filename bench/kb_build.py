"""Knowledge-base build speed: full builds and a rebuild after one entry changed.

Run: ``.venv/bin/python bench/kb_build.py`` from the project root (``--case`` to run one).

Cases (KBs generated deterministically here, written as TSV sources into a temporary folder
and built with the default settings through ``bot.kb.build.build_knowledge_base``):

- ``supervised``: 1,000 entries with 15 questions each (the standard one + 14 paraphrases);
  target ≤ 30 s.
- ``zero_shot``: 10,000 entries with one question each and a long answer; target ≤ 60 s.
- ``rebuild``: the ``supervised`` KB after its build, one entry's answer and one paraphrase
  changed, built again (the per-entry cache in ``KB_DIR/.cache/`` is reused); target ≤ 3 s.

Prints each case's wall and CPU seconds, in total and per stage (``stage_seconds`` and
``stage_cpu_seconds`` of ``build/meta.json``), and writes ``results/bench_kb_build.json``.
CPU seconds are ``time.process_time()`` (every thread of the process) plus the finished
child processes' time: on a machine shared with other jobs wall time measures the load, so
compare two versions of the code by CPU time (wall time is what the targets name). BLAS runs
one thread unless ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` say otherwise (idle BLAS
threads spin, which counts as CPU time on a busy machine). A build whose meta.json has no CPU
stages (older code) shows the total only.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread: no spinning threads inflate CPU time

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from kb_scale import ASPECTS, TEMPLATES, phrase, topics  # noqa: E402

from bot.kb.build import build_knowledge_base, read_meta  # noqa: E402

TARGETS = {"supervised": 30.0, "zero_shot": 60.0, "rebuild": 3.0}
FILLER = (
    "办理前请确认身份证件在有效期内，并保持预留手机号可以正常接收短信验证码。",
    "如遇系统维护，请稍后再试，或拨打客服热线95500-0000转人工咨询。",
    "具体以网点公告和手机银行页面展示为准，本行保留在法律允许范围内解释的权利。",
    "为保障资金安全，请勿向任何人透露密码、验证码等敏感信息。",
)


def answer_text(topic: tuple[str, str, str], i: int) -> str:
    product, action, aspect = topic
    return (
        f"关于{product}{action}：{aspect}请以示例银行手机银行「{product}」页面的说明为准。"
        f"{FILLER[i % len(FILLER)]}{FILLER[(i + 1) % len(FILLER)]}"
    )


def paraphrases(topic: tuple[str, str, str], count: int) -> list[str]:
    """``count`` distinct wordings of ``topic`` (templates × aspect wordings)."""
    out: list[str] = []
    for synonym in range(-1, len(next(iter(ASPECTS.values())))):
        for template in range(len(TEMPLATES)):
            text = phrase(topic, template, synonym)
            if text not in out:
                out.append(text)
    return out[1 : count + 1]


def write_kb(kb_dir: Path, n: int, similar: int) -> list[tuple[str, str, str]]:
    items = topics(n, seed=3)
    folder = kb_dir / "sources"
    folder.mkdir(parents=True)
    with (folder / "generated.tsv").open("w", encoding="utf-8") as out:
        out.write("id\tquestion\tsimilar_questions\tanswer\tcategory\n")
        for i, topic in enumerate(items):
            row = (
                f"g{i:06d}",
                phrase(topic, 0, -1),
                "|".join(paraphrases(topic, similar)),
                answer_text(topic, i),
                topic[0],
            )
            out.write("\t".join(row) + "\n")
    return items


def cpu_now() -> float:
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def timed_build(kb_dir: Path, force: bool) -> dict[str, Any]:
    started, cpu = time.perf_counter(), cpu_now()
    result = build_knowledge_base(kb_dir, {}, None, force=force, progress=sys.stderr.isatty())
    seconds, cpu = time.perf_counter() - started, cpu_now() - cpu
    meta = read_meta(kb_dir / "build")
    return {
        "entries": result.entries,
        "questions": result.variants,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "load_average": round(os.getloadavg()[0], 1),
        "stage_seconds": meta.get("stage_seconds", {}),
        "stage_cpu_seconds": meta.get("stage_cpu_seconds", {}),
        "classifier": meta.get("classifier"),
        "reused": meta.get("reused", {}),
    }


def run_case(name: str, tmp: Path) -> dict[str, Any]:
    kb_dir = tmp / name
    if name == "zero_shot":
        write_kb(kb_dir, 10_000, 0)
        return timed_build(kb_dir, force=True)
    write_kb(kb_dir, 1_000, 14)
    first = timed_build(kb_dir, force=True)
    if name == "supervised":
        return first
    source = kb_dir / "sources" / "generated.tsv"
    lines = source.read_text(encoding="utf-8").splitlines()
    cells = lines[500].split("\t")
    cells[2] = cells[2].replace("|", "|有人问过吗 ", 1)
    cells[3] += "（已更新）"
    lines[500] = "\t".join(cells)
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = timed_build(kb_dir, force=False)
    again["first_build_seconds"] = first["seconds"]
    return again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(TARGETS), action="append", default=None)
    args = parser.parse_args()
    cases = args.case or ["supervised", "zero_shot", "rebuild"]
    tmp = Path(tempfile.mkdtemp(prefix="kb_build_"))
    results: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        for name in cases:
            figures = run_case(name, tmp)
            results[name] = figures
            mark = "ok" if figures["seconds"] <= TARGETS[name] else f"OVER {TARGETS[name]} s"
            print(
                f"{name:>10}: {figures['entries']:,} entries, {figures['questions']:,} questions, "
                f"{figures['seconds']:.1f} s wall ({mark}), {figures['cpu_seconds']:.1f} s CPU, "
                f"load {figures['load_average']}"
            )
            cpu = figures["stage_cpu_seconds"]
            stages = ", ".join(
                f"{k} {v:.1f}" + (f"/{cpu[k]:.1f}" if k in cpu else "")
                for k, v in figures["stage_seconds"].items()
            )
            print(f"{'':>12}stages (wall/CPU s): {stages}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "results" / "bench_kb_build.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"→ {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
