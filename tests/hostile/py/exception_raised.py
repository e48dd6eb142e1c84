def Z10500(Z10500K1):
    raise ValueError('hostile corpus says no')
