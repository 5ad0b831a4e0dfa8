"""A fixed table standing in for the bank's core system."""

ACCOUNTS = {
    "debit_card": {"name": "储蓄卡", "tail": "1234", "balance": "52,380.50"},
    "credit_card": {"name": "信用卡", "tail": "5678", "balance": "31,200.00"},
}
