"""The wire dialects. Each is a package of ``protocol`` (wire models), ``translate`` (wire <->
canonical, satisfying ``base.Dialect``) and ``router`` (FastAPI routes); see ``base``."""
