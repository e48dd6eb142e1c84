import re
def Z10500(Z10500K1):
    return str(bool(re.match(r'^(a|aa)+$', 'a' * 60 + '!')))
