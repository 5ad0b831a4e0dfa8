"""Knowledge-base scale: build time, search latency and memory on generated entries.

Run: ``.venv/bin/python bench/kb_scale.py [--entries 100000]`` from the project root.
Targets at 100,000 entries: build ≤ 60 s, search p50 ≤ 2 ms and p99 ≤ 10 ms.
``--million`` runs 1,000,000 entries (opt-in: about 12 min and 13 GB peak memory on 2 cores).

Entries are generated from banking products × actions × aspects, each with a standard
question and two paraphrases, written as a TSV source into a temporary KB folder and built
with the default settings (``bot.kb.build.build_knowledge_base``). Queries are fresh
paraphrases of random entries. Prints a table and writes ``results/bench_kb_scale.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.kb.build import build_knowledge_base, read_meta  # noqa: E402
from bot.kb.knowledge_base import KnowledgeBase  # noqa: E402
from bot.kb.settings import KBSettings  # noqa: E402

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
    "通知存款",
    "手机银行",
    "网上银行",
    "数字人民币",
    "电子账户",
    "养老金账户",
    "个人养老金",
    "国债",
    "信托",
    "证券账户",
    "第三方存管",
    "ETC",
    "缴费账户",
    "水电费代扣",
    "话费充值",
    "跨境汇款",
    "外币现钞",
    "旅行支票",
    "保管箱",
    "对公账户",
    "支票",
    "汇票",
    "本票",
    "信用证",
    "保函",
]
MODIFIERS = [
    "白金",
    "金卡",
    "普卡",
    "联名",
    "学生",
    "商务",
    "公务",
    "企业",
    "个人",
    "青年",
    "老年",
    "跨境",
    "绿色",
    "乡村",
    "新市民",
    "高端",
    "钻石",
    "标准",
    "尊享",
    "专属",
    "电子",
    "实体",
    "虚拟",
    "主",
    "附属",
    "家庭",
    "亲子",
    "退休",
    "军人",
    "教师",
    "医护",
    "外籍",
    "港澳",
    "台胞",
    "留学",
    "出境",
    "小微",
    "个体户",
    "农户",
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
    "转让",
    "续期",
    "提前还款",
    "赎回",
    "购买",
    "退款",
    "投诉",
    "升级",
    "降级",
    "绑定",
    "解绑",
    "冻结",
    "解冻",
    "补办",
    "换卡",
    "延期",
    "展期",
    "提额",
    "降额",
    "分期",
    "销户",
    "过户",
    "质押",
    "解押",
    "预约",
    "取消预约",
    "撤销",
    "变更",
    "核验",
    "认证",
    "签约",
    "解约",
    "充值",
    "提现",
    "转账",
    "结汇",
    "购汇",
    "缴费",
    "退订",
    "续费",
    "对账",
    "打印流水",
    "开证明",
    "授权",
    "取消授权",
    "设置密码",
    "重置密码",
    "设置限额",
    "调整额度",
]
ASPECTS = {
    "需要什么材料": ("要带哪些资料", "得准备什么证件", "材料清单是什么"),
    "手续费多少": ("收不收费", "要花多少钱", "费用怎么算"),
    "多久能办好": ("要等几天", "几个工作日完成", "处理时间多长"),
    "有什么条件": ("门槛是什么", "谁可以办", "要满足哪些要求"),
    "在哪里办理": ("去哪办", "哪个网点能办", "线下去哪里"),
    "能不能在手机上办": ("app上能办吗", "可以线上办吗", "不去网点行不行"),
    "有没有额度限制": ("限额多少", "最多能办多少", "上限是多少"),
    "利率是多少": ("利息怎么算", "年化多少", "收益率多少"),
    "必须本人去吗": ("能找人代办吗", "家人可以帮我办吗", "委托别人行不行"),
    "流程是什么": ("步骤有哪些", "怎么操作", "具体怎么弄"),
    "失败了怎么办": ("没成功怎么处理", "提示错误怎么办", "办不了怎么回事"),
    "进度怎么查": ("到哪一步了", "怎么看办理状态", "结果在哪看"),
    "周末能办吗": ("节假日可以办吗", "周六日能不能办", "休息日办得了吗"),
    "会影响征信吗": ("对信用记录有影响吗", "会上征信吗", "影响贷款吗"),
    "可以撤回吗": ("能反悔吗", "办了能取消吗", "可以撤销吗"),
    "有什么风险": ("安全吗", "会不会亏", "风险大不大"),
}
TEMPLATES = (
    "{p}{a}{x}？",
    "请问{p}怎么{a}，{x}",
    "我想{a}{p} {x}",
    "{a}{p}的话{x}",
    "想咨询下{p}{a}的事 {x}",
    "关于{p}{a}，{x}",
)


def topics(n: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """``n`` distinct (product, action, aspect) triples."""
    rng = random.Random(seed)
    products = [m + p for p in PRODUCTS for m in MODIFIERS] + PRODUCTS
    aspects = list(ASPECTS)
    seen: set[tuple[str, str, str]] = set()
    out: list[tuple[str, str, str]] = []
    limit = len(products) * len(ACTIONS) * len(aspects)
    if n > limit:
        raise SystemExit(f"at most {limit} distinct entries can be generated")
    while len(out) < n:
        t = (rng.choice(products), rng.choice(ACTIONS), rng.choice(aspects))
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def phrase(topic: tuple[str, str, str], template: int, synonym: int) -> str:
    product, action, aspect = topic
    x = aspect if synonym < 0 else ASPECTS[aspect][synonym % len(ASPECTS[aspect])]
    return TEMPLATES[template % len(TEMPLATES)].format(p=product, a=action, x=x)


def write_source(kb_dir: Path, items: list[tuple[str, str, str]]) -> None:
    folder = kb_dir / "sources"
    folder.mkdir(parents=True)
    with (folder / "generated.tsv").open("w", encoding="utf-8") as out:
        out.write("id\tquestion\tsimilar_questions\tanswer\tcategory\n")
        for i, topic in enumerate(items):
            similar = [phrase(topic, 1, 0), phrase(topic, 2, 1)]
            answer = (
                f"{topic[0]}{topic[1]}：{topic[2]}请以示例银行手机银行「{topic[0]}」页面说明为准，"
                "或致电95500-0000咨询。"
            )
            row = (f"g{i:07d}", phrase(topic, 0, -1), "|".join(similar), answer, topic[0])
            out.write("\t".join(row) + "\n")


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def dense_recall(kb: KnowledgeBase, texts: list[str], k: int = 10) -> float:
    """How many of the exact top-k question vectors the FAISS index finds (1.0 for flat)."""
    parts = kb.parts
    found = 0
    for text in texts:
        qv, _ = parts.embedder.encode_query(parts.analyzer.analyse(text))
        exact = set(np.argpartition(-(parts.vectors @ qv), k)[:k].tolist())
        _, ids = parts.dense.search(qv, k)
        found += len(exact & set(ids.tolist()))
    return found / (k * len(texts))


def run(n: int, queries: int, keep: Path | None) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="kb_scale_"))
    kb_dir = (keep or tmp) / "kb"
    if kb_dir.exists():
        shutil.rmtree(kb_dir)
    try:
        started = time.perf_counter()
        items = topics(n)
        write_source(kb_dir, items)
        generated = time.perf_counter() - started
        print(f"generated {n:,} entries in {generated:.1f} s", file=sys.stderr)
        rss_before = rss_mb()
        started = time.perf_counter()
        result = build_knowledge_base(kb_dir, {}, None, force=True, progress=sys.stderr.isatty())
        build_s = time.perf_counter() - started
        build_peak = peak_rss_mb()
        gc.collect()
        started = time.perf_counter()
        kb = KnowledgeBase.load(kb_dir, KBSettings())
        load_s = time.perf_counter() - started
        rss_loaded = rss_mb()

        rng = random.Random(11)
        picks = [rng.randrange(n) for _ in range(queries)]
        # a template the entry does not use, with an aspect wording it uses
        texts = [phrase(items[i], rng.randrange(3, 6), rng.randrange(0, 2)) for i in picks]
        today = date.today()
        for text in texts[:50]:  # warm-up
            kb.search(text, 5, today=today)
        times = []
        top1 = 0
        for i, text in zip(picks, texts, strict=True):
            t0 = time.perf_counter()
            hits = kb.search(text, 5, today=today)
            times.append((time.perf_counter() - t0) * 1000)
            top1 += bool(hits) and hits[0].id == f"g{i:07d}"
        recall = dense_recall(kb, texts[:200])
        figures: dict[str, object] = {
            "entries": n,
            "questions": result.variants,
            "index": result.index_kind,
            "classifier": result.classifier,
            "build_s": round(build_s, 1),
            "build_stages_s": ", ".join(
                f"{k} {v:.1f}"
                for k, v in read_meta(kb_dir / "build").get("stage_seconds", {}).items()
            ),
            "load_s": round(load_s, 2),
            "build_dir_mb": round(folder_mb(kb_dir / "build"), 1),
            "rss_build_peak_mb": round(build_peak, 0),
            "rss_before_build_mb": round(rss_before, 0),
            "rss_loaded_mb": round(rss_loaded, 0),
            "search_p50_ms": round(statistics.median(times), 3),
            "search_p99_ms": round(percentile(times, 99), 3),
            "search_mean_ms": round(statistics.fmean(times), 3),
            "queries": queries,
            "paraphrase_top1": round(top1 / queries, 3),
            "dense_recall@10_vs_exact": round(recall, 3),
            "cores": os.cpu_count(),
        }
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries (default 100000)")
    parser.add_argument(
        "--million", action="store_true", help="run 1,000,000 entries (slow; opt-in)"
    )
    parser.add_argument("--queries", type=int, default=2000, help="timed searches (default 2000)")
    parser.add_argument("--keep", type=Path, default=None, help="build into DIR/kb and keep it")
    args = parser.parse_args()
    n = 1_000_000 if args.million else args.entries
    if n >= 1_000_000 and not args.million:
        parser.error("1,000,000 entries and more need --million (opt-in: slow, several GB)")
    figures = run(n, args.queries, args.keep)
    targets = {"build_s": 60.0, "search_p50_ms": 2.0, "search_p99_ms": 10.0}
    for key, value in figures.items():
        mark = ""
        if key in targets and n <= 100_000:
            mark = "  ok" if float(value) <= targets[key] else f"  OVER target {targets[key]}"  # type: ignore[arg-type]
        print(f"{key:>22}: {value}{mark}")
    out = ROOT / "results" / "bench_kb_scale.json"
    out.parent.mkdir(exist_ok=True)
    existing = json.loads(out.read_text()) if out.is_file() else {}
    existing[str(n)] = figures
    out.write_text(json.dumps(existing, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
