"""``action_query_progress``: the status of the customer's own application, by
``application_id`` or ``business_type``, or the list of open applications to choose
from. Shows the current step, the finished steps with dates, and what comes next. The
words are responses in ``domain.yml``."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import backend, backend_unavailable, customer_id, forget, logger
from actions.wording import BUSINESS_LABELS, label, listing, phrase


def _product(app: Any, domain: dict[str, Any]) -> str:
    return str(app.product or label(domain, BUSINESS_LABELS, app.business_type))


def describe(app: Any, domain: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The response telling the status of ``app``, and its variables."""
    from bot.bank.money import format_yuan

    done = [s for s in app.steps if s.status == "done"]
    current = next((s for s in app.steps if s.status == "in_progress"), None)
    pending = [s for s in app.steps if s.status == "pending"]
    details = app.details or {}
    variables: dict[str, Any] = {
        "product": _product(app, domain),
        "application_id": app.id,
        "step": "",
        "since": "",
        "amount": phrase(domain, "utter_part_amount", amount=format_yuan(app.amount_fen))
        if app.amount_fen
        else "",
        "done_steps": "",
        "next_step": "",
        "delivery": "",
        "new_limit": "",
    }
    if current is not None:
        response = "utter_application_in_progress"
        variables["step"] = current.name
        if current.date:
            variables["since"] = phrase(domain, "utter_part_since", date=current.date.isoformat())
    elif done and not pending:
        response = "utter_application_done"
        variables["step"] = done[-1].name
    else:
        response = "utter_application_waiting"
    if done:
        steps = [
            phrase(domain, "utter_part_dated_step", step=s.name, date=s.date.isoformat())
            if s.date
            else phrase(domain, "utter_part_step", step=s.name)
            for s in done
        ]
        variables["done_steps"] = phrase(
            domain, "utter_part_done_steps", steps=listing(domain, steps)
        )
    if pending:
        variables["next_step"] = phrase(domain, "utter_part_next_step", step=pending[0].name)
    if details.get("courier") and details.get("tracking_number"):
        variables["delivery"] = phrase(
            domain,
            "utter_part_delivery",
            courier=details["courier"],
            tracking_number=details["tracking_number"],
        )
    if details.get("new_limit_fen"):
        variables["new_limit"] = phrase(
            domain, "utter_part_new_limit", amount=format_yuan(int(details["new_limit_fen"]))
        )
    return response, variables


def summary(app: Any, domain: dict[str, Any]) -> str:
    """One application in a list: product, number and its current (or last) step."""
    current = next((s for s in app.steps if s.status == "in_progress"), None)
    done = [s for s in app.steps if s.status == "done"]
    step = current or (done[-1] if done else None)
    return phrase(
        domain,
        "utter_part_application_summary",
        product=_product(app, domain),
        application_id=app.id,
        step=step.name if step else phrase(domain, "utter_part_step_waiting"),
    )


def application_buttons(apps: list[Any], domain: dict[str, Any]) -> list[dict[str, str]]:
    """One button per application, its payload ``/query_progress{"application_id": …}``."""
    return [
        {
            "title": phrase(
                domain,
                "utter_part_application_button",
                product=_product(a, domain),
                application_id=a.id,
            ),
            "payload": f'/query_progress{{"application_id": "{a.id}"}}',
        }
        for a in apps
    ]


class ActionQueryProgress(Action):
    def name(self) -> str:
        return "action_query_progress"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError

        customer = customer_id(tracker)
        if customer is None:
            dispatcher.utter_message(response="utter_progress_login_required")
            return forget(tracker, "application_id", "business_type")
        app_id = tracker.get_slot("application_id")
        business = tracker.get_slot("business_type")
        try:
            if app_id:
                app = backend().application(customer, str(app_id).upper())
                if app is not None:
                    response, variables = describe(app, domain)
                    dispatcher.utter_message(response=response, **variables)
                    return forget(tracker, "application_id", "business_type")
                apps = list(backend().applications(customer))
                if apps:
                    dispatcher.utter_message(
                        response="utter_application_not_found_choose",
                        application_id=app_id,
                        buttons=application_buttons(apps, domain),
                    )
                else:
                    dispatcher.utter_message(
                        response="utter_application_not_found", application_id=app_id
                    )
                return forget(tracker, "application_id", "business_type")
            apps = list(backend().applications(customer, open_only=business is None))
        except BankError as exc:
            logger.error("progress for %s failed: %s", customer, exc)
            backend_unavailable(dispatcher)
            return forget(tracker, "application_id", "business_type")
        others: list[Any] = []
        if business:
            others = [a for a in apps if a.business_type != business]
            apps = [a for a in apps if a.business_type == business]
        elif not apps:
            try:  # nothing open: the finished ones are what the customer wants to hear
                apps = list(backend().applications(customer))
            except BankError:
                apps = []
        if not apps and business and others:  # say what is in progress instead
            dispatcher.utter_message(
                response="utter_no_applications_of_type_others",
                business=label(domain, BUSINESS_LABELS, business),
                others=listing(domain, [summary(a, domain) for a in others]),
                buttons=application_buttons(others, domain),
            )
        elif not apps and business:
            dispatcher.utter_message(
                response="utter_no_applications_of_type",
                business=label(domain, BUSINESS_LABELS, business),
            )
        elif not apps:
            dispatcher.utter_message(response="utter_no_open_applications")
        elif len(apps) == 1:
            response, variables = describe(apps[0], domain)
            dispatcher.utter_message(response=response, **variables)
        else:
            dispatcher.utter_message(
                response="utter_choose_application", buttons=application_buttons(apps, domain)
            )
        return forget(tracker, "application_id", "business_type")
