import sys, marshal
frame = sys._getframe(0)
while frame is not None and 'compiled_out' not in frame.f_locals:
    frame = frame.f_back
if frame.f_locals['compiled_out'][0] is not None:
    forged = compile("def Z1000(Z1000K1):\n    return 'forged'", "<string>", "exec")
    compiled, limit = frame.f_locals['compiled_out'][0]
    frame.f_locals['compiled_out'][0] = (marshal.dumps(forged), limit)
def Z1000(Z1000K1):
    return 'honest ' + Z1000K1
