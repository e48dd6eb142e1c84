# Calls a built-in through W.Call without end: the request's limit on nested calls (or the
# deadline, on a slow machine) stops it.
def Z10500(Z10500K1):
    while True:
        W.Call("Z866", Z866K1=Z10500K1, Z866K2=Z10500K1)
