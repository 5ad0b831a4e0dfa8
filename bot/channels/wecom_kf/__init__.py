"""The WeChat customer service (微信客服, WeCom kf) channel: ``docs/wecom-kf.md``."""
