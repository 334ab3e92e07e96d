"""Plumbing the Chinese marketplace adapters (Taobao TOP, JD JOS, Pinduoduo) share.

Private to ``ordercore_adapters.channels``: each module has one job (rate limiting, the
retry and ban-wait loop, config checks, secret scrubbing, Shanghai time, md5 signing);
the platform packages keep only what is really theirs.
"""
