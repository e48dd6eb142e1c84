import subprocess
def Z10500(Z10500K1):
    return subprocess.run(['ls', '/'], capture_output=True).stdout.decode()
