import sys
def Z10500(Z10500K1):
    if 'zeval_hostile_planted' in sys.modules:
        return 'leaked'
    sys.modules['zeval_hostile_planted'] = sys
    return 'fresh'
