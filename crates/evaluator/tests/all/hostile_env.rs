//! The guest sees no environment variables.

use zeval_evaluator::Family::{JavaScript, Python};

use crate::hostile;

#[test]
fn environment_variables_are_invisible() {
    let py = "def Z1000():\n    import os\n    return repr(dict(os.environ))";
    assert_eq!(hostile(Python, py, &[]), Ok("{}".to_owned()));
    let py = "def Z1000():\n    import os\n    return str(os.getenv('HOME'))";
    assert_eq!(hostile(Python, py, &[]), Ok("None".to_owned()));
    let js = "function Z1000() { return JSON.stringify(process.env); }";
    assert_eq!(
        hostile(JavaScript, js, &[]),
        Err("process is not defined".to_owned())
    );
}
