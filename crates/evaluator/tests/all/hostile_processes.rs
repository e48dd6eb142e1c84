//! The guest cannot start processes.

use zeval_evaluator::Family::Python;

use crate::hostile;

#[test]
fn os_system_and_subprocess_fail() {
    let py = "def Z1000():\n    import os\n    return str(os.system('cat /etc/passwd'))";
    let result = hostile(Python, py, &[]);
    assert!(result.is_err(), "{result:?}");
    let py = "def Z1000():\n    import subprocess\n    return subprocess.check_output(['cat', '/etc/passwd']).decode()";
    let result = hostile(Python, py, &[]);
    assert!(result.is_err(), "{result:?}");
    let py = "def Z1000():\n    import os\n    return str(os.fork())";
    assert!(hostile(Python, py, &[]).is_err());
}
