"""The WeChat Official Account channel: the webhook (``channel``), signatures and AES safe
mode (``crypto``), the customer-service message API (``api``) and OpenID bindings
(``store``)."""
