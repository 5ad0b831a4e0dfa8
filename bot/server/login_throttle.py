class LoginThrottle:
    def __init__(self, **kw): pass
