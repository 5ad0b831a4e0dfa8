"""Custom actions of the weather assistant.

The forecast comes from a small fixed table so that the assistant answers without a
network connection; a real assistant would call a weather API here."""

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

FORECASTS = {
    ("上海", "今天"): "多云，18~24℃",
    ("上海", "明天"): "小雨转阴，16~21℃",
    ("上海", "后天"): "晴，17~25℃",
    ("北京", "今天"): "晴，8~19℃",
    ("北京", "明天"): "多云，9~20℃",
    ("北京", "后天"): "大风，5~15℃",
    ("广州", "今天"): "雷阵雨，24~31℃",
    ("广州", "明天"): "阵雨，24~30℃",
    ("广州", "后天"): "多云，25~32℃",
}


class ActionWeatherFormSubmit(Action):
    def name(self) -> Text:
        return "action_weather_form_submit"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        city = tracker.get_slot("address")
        day = tracker.get_slot("date_time")
        forecast = FORECASTS.get((city, day))
        if forecast is None:
            dispatcher.utter_message(text=f"抱歉，暂时查不到{city}{day}的天气。")
        else:
            dispatcher.utter_message(text=f"{city}{day}的天气：{forecast}")
        return []
