"""A small knowledge base (a fictional library's FAQ) that the KB tests write into tmp_path."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LIBRARY_YML = """\
version: "1"
entries:
  - id: borrow_books
    category: 借阅
    question: 怎么借书？
    similar_questions:
      - 借书需要什么手续
      - 我想借几本书怎么办
      - 第一次来图书馆怎么借书
      - 借书要带读者证吗
      - 自助借书机怎么用
      - 一次最多能借几本
      - 外地人能借书吗
      - 借书要押金吗
    answer: 持读者证在自助借书机或服务台办理借阅，每人最多借10本，借期30天。

  - id: renew_books
    category: 借阅
    question: 借的书到期了怎么续借？
    similar_questions:
      - 书快到期了能续借吗
      - 续借在哪里办
      - 网上可以续借吗
      - 续借一次能延长多久
      - 已经超期了还能续借吗
      - 续借次数有限制吗
      - 手机上怎么续借
      - 书还没看完想多借几天
    answer: 到期前可在官网或App「我的借阅」续借一次，延长30天；已超期的图书需先缴纳滞纳金。

  - id: overdue_fine
    category: 借阅
    question: 图书超期了怎么收费？
    similar_questions:
      - 还书晚了要罚款吗
      - 超期一天罚多少钱
      - 滞纳金怎么交
      - 逾期还书有什么后果
      - 超期罚款能免吗
      - 书超期很久了怎么办
      - 过期没还书会影响借书吗
      - 超期费用在哪交
    answer: 每册每天0.1元滞纳金，可在服务台或App缴纳；未缴清前暂停借阅。

  - id: lost_book
    category: 借阅
    question: 借的书丢了怎么办？
    similar_questions:
      - 图书弄丢了要赔多少
      - 书找不到了怎么处理
      - 借的书被我弄坏了
      - 丢书要按原价赔吗
      - 书被水泡了怎么赔偿
      - 不小心把书撕破了
      - 借的书落在地铁上了
      - 丢失图书怎么赔
    answer: 请到服务台办理赔偿：按图书原价的两倍赔偿，或购买同版本新书替换。

  - id: reader_card
    category: 读者证
    question: 怎么办理读者证？
    similar_questions:
      - 办借书证需要什么
      - 读者证在哪办
      - 办证要钱吗
      - 小孩能办读者证吗
      - 网上能办读者证吗
      - 办一张借书卡要带什么
      - 读者证丢了怎么补办
      - 身份证能当读者证用吗
    answer: 携带身份证到服务台免费办理，未成年人需监护人陪同；也可在App在线办理电子读者证。

  - id: opening_hours
    category: 服务
    question: 图书馆几点开门？
    similar_questions:
      - 开放时间是几点到几点
      - 周末开不开门
      - 晚上几点关门
      - 节假日开放吗
      - 周一闭馆吗
      - 今天开馆吗
      - 阅览室几点关
      - 春节期间开不开
    answer: 周二至周日9:00-21:00开放，周一闭馆；法定节假日另行通知。

  - id: wifi
    category: 服务
    question: 馆内WiFi怎么连接？
    similar_questions:
      - 图书馆有无线网吗
      - wifi密码是多少
      - 上网要登录吗
      - 网连不上怎么办
      - 手机怎么连图书馆的网
      - 无线网络要收费吗
      - 笔记本能上网吗
      - 网速太慢了
    answer: 连接“Library-Free”，用读者证号和密码登录，免费使用。
"""

NLU_TEXTS = ["你好", "谢谢", "我想借书", "再见", "图书馆在哪里"]


def write_library_kb(root: Path, name: str = "kb") -> Path:
    kb_dir = root / name
    (kb_dir / "sources").mkdir(parents=True)
    (kb_dir / "sources" / "library.yml").write_text(LIBRARY_YML, encoding="utf-8")
    return kb_dir
