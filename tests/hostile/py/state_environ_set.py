import os
def Z10500(Z10500K1):
    seen = os.environ.get('ZEVAL_HOSTILE', 'unset')
    os.environ['ZEVAL_HOSTILE'] = 'set'
    return seen
