import json
def Z10500(Z10500K1):
    before = json.dumps([1])
    json.dumps = lambda *a, **k: 'patched'
    return before
