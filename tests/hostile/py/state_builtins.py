import builtins
def Z10500(Z10500K1):
    if hasattr(builtins, 'leaked'):
        return 'leaked'
    builtins.leaked = True
    return 'fresh'
