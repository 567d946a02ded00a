//! IAM JSON policies to Cedar (`fsgate_policy::bucket_policy`): whatever a document holds,
//! translation answers, and what it produces is Cedar that parses (a quote or a brace in a
//! Sid, an ARN or a condition value must never break out of its literal) and that the
//! engine takes as a session limit or a bucket policy, or refuses with an error.
#![no_main]

use std::str::FromStr;
use std::sync::OnceLock;

use fsgate_policy::bucket_policy::{translate, translate_identity};
use fsgate_policy::{Changes, PolicyEngine};

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::builtin().expect("the built-in policies load"))
}

fn parses(cedar: &str, doc: &str) {
    if let Err(e) = cedar_policy::PolicySet::from_str(cedar) {
        panic!("translation of {doc:?} is not Cedar: {e}\n{cedar}");
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    // Cedar text is kept as written; the translation is what is under test.
    if !doc.trim_start().starts_with('{') {
        return;
    }
    if let Ok(cedar) = translate_identity(doc) {
        parses(&cedar, doc);
        let _ = engine().limit("fuzz", &cedar);
    }
    if let Ok(t) = translate("fuzz-bucket", doc) {
        parses(&t.cedar, doc);
        let changes = Changes {
            bucket_policies: vec![("fuzz-bucket".into(), Some(t.cedar.clone()))],
            ..Changes::default()
        };
        let _ = engine().with_changes(&changes);
    }
});
