import signal
def Z10500(Z10500K1):
    try:
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    except Exception as e:
        pass
    while True:
        pass
