"""The bank's core system as the actions see it: customers, accounts (cards), applications
and card freezes, behind :class:`~bot.bank.interfaces.CoreBanking`.

Two backends: :class:`~bot.bank.sandbox.SandboxBank` (a seeded SQLite database, the default)
and :class:`~bot.bank.http_client.HttpCoreBanking` (a real core-banking gateway over HTTP).
:func:`~bot.bank.factory.create_backend` picks one from configuration.
"""
