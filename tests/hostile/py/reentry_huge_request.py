# A W.Call request larger than a call's input limit (8 MiB): refused in the sandbox before
# the host reads it.
def Z10500(Z10500K1):
    return W.Call("Z866", Z866K1=Z10500K1 * (9 * 1024 * 1024), Z866K2=Z10500K1)
