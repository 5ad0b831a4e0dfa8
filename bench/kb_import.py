"""``bot kb import`` / ``bot kb lint`` at bank scale: a generated 10,000-entry .xlsx.

Run: ``.venv/bin/python bench/kb_import.py [--entries 10000] [--paraphrases 15]`` from the
project root. Writes a workbook (标准问, 相似问法 separated by newlines, 答案, 分类; no id
column, so every id is generated) into a temporary KB folder, then times:

- ``import``: reading the workbook, mapping, ids, all checks, writing the YAML;
- ``lint``: reading the written YAML back and all checks;
- ``collisions``: the near-duplicate join alone (char 1–3-gram TF-IDF cosine ≥ 0.9) over all
  questions.

Prints the figures and writes ``results/bench_kb_import.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from openpyxl import Workbook  # noqa: E402

from bot.kb.collisions import near_duplicates  # noqa: E402
from bot.kb.importer import import_file  # noqa: E402
from bot.kb.lint import LintSettings, lint_kb, summary  # noqa: E402

PRODUCTS = [
    "信用卡",
    "储蓄卡",
    "借记卡",
    "工资卡",
    "社保卡",
    "房贷",
    "车贷",
    "消费贷",
    "经营贷",
    "助学贷款",
    "公积金贷款",
    "理财产品",
    "基金",
    "保险",
    "外汇",
    "黄金",
    "大额存单",
    "定期存款",
    "活期存款",
    "手机银行",
    "网上银行",
    "数字人民币",
    "电子账户",
    "个人养老金",
    "国债",
    "证券账户",
    "ETC",
    "跨境汇款",
    "保管箱",
    "对公账户",
]
MODIFIERS = [
    "白金",
    "金卡",
    "普卡",
    "联名",
    "学生",
    "商务",
    "企业",
    "个人",
    "老年",
    "跨境",
    "电子",
    "实体",
    "家庭",
    "退休",
    "小微",
]
ACTIONS = [
    "申请",
    "办理",
    "注销",
    "挂失",
    "激活",
    "查询",
    "修改",
    "开通",
    "关闭",
    "续期",
    "提前还款",
    "赎回",
    "购买",
    "退款",
    "升级",
    "绑定",
    "解绑",
    "冻结",
    "解冻",
    "补办",
    "延期",
    "提额",
    "分期",
    "销户",
    "预约",
]
TEMPLATES = [
    "{m}{p}怎么{a}",
    "{m}{p}如何{a}",
    "我想{a}{m}{p}",
    "请问{m}{p}能{a}吗",
    "{a}{m}{p}要什么材料",
    "{m}{p}{a}流程",
    "{m}{p}在哪里{a}",
    "{m}{p}{a}要多久",
    "{m}{p}{a}收费吗",
    "怎样{a}{m}{p}",
    "{m}{p}可以网上{a}吗",
    "{a}{m}{p}需要本人去吗",
    "{m}{p}{a}有什么条件",
    "帮我{a}一下{m}{p}",
    "{m}{p}{a}失败怎么办",
    "{m}{p}{a}的步骤",
    "{m}{p}手机上能{a}吗",
]
FILLER = "请携带本人有效身份证件，通过手机银行或到就近网点办理，具体以页面提示为准。"


def generate(path: Path, entries: int, paraphrases: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    combos = list(itertools.product(MODIFIERS, PRODUCTS, ACTIONS))
    rng.shuffle(combos)
    if entries > len(combos):
        raise SystemExit(f"at most {len(combos)} entries can be generated")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["分类", "标准问", "相似问法", "答案"])
    questions = 0
    for m, p, a in combos[:entries]:
        texts = [t.format(m=m, p=p, a=a) for t in rng.sample(TEMPLATES, paraphrases + 1)]
        answer = f"{m}{p}{a}：" + FILLER * rng.choice((1, 2, 3, 4, 16))
        sheet.append([p, texts[0] + "？", "\n".join(texts[1:]), answer])
        questions += len(texts)
    book.save(path)
    return questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--paraphrases", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_kb_import.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        book = folder / "faq.xlsx"
        t0 = time.perf_counter()
        questions = generate(book, args.entries, min(args.paraphrases, len(TEMPLATES) - 1))
        generated = time.perf_counter() - t0
        kb = folder / "kb"
        (kb / "sources").mkdir(parents=True)

        t0 = time.perf_counter()
        result = import_file(book, kb)
        import_s = time.perf_counter() - t0
        assert result.written, [str(p) for p in result.errors[:5]]

        t0 = time.perf_counter()
        report = lint_kb(kb, LintSettings())
        lint_s = time.perf_counter() - t0

        data = yaml.safe_load(result.target.read_text(encoding="utf-8"))
        texts: list[str] = []
        owners: list[int] = []
        for number, entry in enumerate(data["entries"]):
            for text in [entry["question"], *entry["similar_questions"]]:
                texts.append(text)
                owners.append(number)
        t0 = time.perf_counter()
        pairs = near_duplicates(texts, owners, 0.9)
        collisions_s = time.perf_counter() - t0
        size = book.stat().st_size
        yml = result.target.stat().st_size
    figures = {
        "entries": args.entries,
        "questions": questions,
        "xlsx_mb": round(size / 2**20, 2),
        "yaml_mb": round(yml / 2**20, 2),
        "generate_s": round(generated, 2),
        "import_s": round(import_s, 2),
        "lint_s": round(lint_s, 2),
        "collisions_s": round(collisions_s, 2),
        "similar_pairs": len(pairs),
        "import_summary": {k: v["count"] for k, v in summary(result.findings).items()},
        "lint_summary": {k: v["count"] for k, v in summary(report.findings).items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(
        f"{args.entries} entries, {questions} questions (xlsx {figures['xlsx_mb']} MB): "
        f"import {import_s:.1f} s, lint {lint_s:.1f} s, collisions alone {collisions_s:.1f} s "
        f"({len(pairs)} question pairs ≥ 0.9), peak RSS {figures['peak_rss_mb']} MB"
    )
    print("import findings:", figures["import_summary"])
    print("lint findings:  ", figures["lint_summary"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"→ {args.out}")


if __name__ == "__main__":
    main()
