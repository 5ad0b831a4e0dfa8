"""``action_query_progress``: the status of the customer's own application, by
``application_id`` or ``business_type``, or the list of open applications to choose
from. Shows the current step, the finished steps with dates, and what comes next."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    BUSINESS_LABELS,
    ask_to_log_in,
    backend,
    backend_unavailable,
    customer_id,
    forget,
    logger,
)


def describe(app: Any) -> str:
    from bot.bank.money import format_yuan

    product = app.product or BUSINESS_LABELS.get(app.business_type, "业务")
    head = f"您的{product}申请（编号{app.id}"
    if app.amount_fen:
        head += f"，金额 {format_yuan(app.amount_fen)}"
    head += "）"
    done = [s for s in app.steps if s.status == "done"]
    current = next((s for s in app.steps if s.status == "in_progress"), None)
    pending = [s for s in app.steps if s.status == "pending"]
    parts = []
    if current is not None:
        since = f"（{current.date.isoformat()} 起）" if current.date else ""
        parts.append(f"{head}当前处于“{current.name}”阶段{since}。")
    elif done and not pending:
        parts.append(f"{head}已办理完成，最近一步：“{done[-1].name}”。")
    else:
        parts.append(f"{head}正在等待处理。")
    if done:
        parts.append(
            "已完成："
            + "、".join(f"{s.name}（{s.date.isoformat()}）" if s.date else s.name for s in done)
            + "。"
        )
    if pending:
        parts.append(f"下一步：{pending[0].name}。")
    details = app.details or {}
    if details.get("courier") and details.get("tracking_number"):
        parts.append(f"快递：{details['courier']} {details['tracking_number']}。")
    if details.get("new_limit_fen"):
        parts.append(f"新额度：{format_yuan(int(details['new_limit_fen']))}。")
    return "".join(parts)


class ActionQueryProgress(Action):
    def name(self) -> str:
        return "action_query_progress"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError

        customer = customer_id(tracker)
        if customer is None:
            ask_to_log_in(dispatcher, "查询办理进度")
            return forget(tracker, "application_id", "business_type")
        app_id = tracker.get_slot("application_id")
        business = tracker.get_slot("business_type")
        try:
            if app_id:
                app = backend().application(customer, str(app_id).upper())
                if app is not None:
                    dispatcher.utter_message(text=describe(app))
                    return forget(tracker, "application_id", "business_type")
                apps = list(backend().applications(customer))
                text = f"没有找到您名下编号为{app_id}的申请，请核对编号。"
                if apps:
                    dispatcher.utter_message(
                        text=text + "您名下的申请有：", buttons=self._buttons(apps)
                    )
                else:
                    dispatcher.utter_message(text=text)
                return forget(tracker, "application_id", "business_type")
            apps = list(backend().applications(customer, open_only=business is None))
        except BankError as exc:
            logger.error("progress for %s failed: %s", customer, exc)
            backend_unavailable(dispatcher)
            return forget(tracker, "application_id", "business_type")
        if business:
            apps = [a for a in apps if a.business_type == business]
        elif not apps:
            try:  # nothing open: the finished ones are what the customer wants to hear
                apps = list(backend().applications(customer))
            except BankError:
                apps = []
        if not apps:
            what = BUSINESS_LABELS.get(str(business), "") if business else "正在办理的"
            dispatcher.utter_message(text=f"您目前没有{what}业务申请。")
        elif len(apps) == 1:
            dispatcher.utter_message(text=describe(apps[0]))
        else:
            dispatcher.utter_message(
                text="您有多笔申请，请问要查询哪一笔？", buttons=self._buttons(apps)
            )
        return forget(tracker, "application_id", "business_type")

    @staticmethod
    def _buttons(apps: list[Any]) -> list[dict[str, str]]:
        return [
            {
                "title": f"{a.product or BUSINESS_LABELS.get(a.business_type, '业务')} {a.id}",
                "payload": f'/query_progress{{"application_id": "{a.id}"}}',
            }
            for a in apps
        ]
