"""Channel adapters: one module per sales platform (see DESIGN.md).

Webhook signature schemes shared by the push-capable channels live in
:mod:`ordercore_adapters.channels.signatures`.
"""
