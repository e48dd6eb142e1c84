import threading
def Z10500(Z10500K1):
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    return 'threaded'
