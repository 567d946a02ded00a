//! Output: rows as an aligned table or JSON lines, one value as JSON.

use serde_json::Value;

pub(crate) fn print_rows(json_out: bool, rows: &[Value], cols: &[&str]) {
    if json_out {
        for r in rows {
            println!("{r}");
        }
        return;
    }
    let cell = |r: &Value, c: &str| -> String {
        match r.get(c) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => "-".into(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            Some(v) => v.to_string(),
        }
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<String>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(cols.iter().map(|c| c.to_uppercase()).collect()));
    for r in rows {
        println!("{}", line(cols.iter().map(|c| cell(r, c)).collect()));
    }
}

pub(crate) fn print_one(json_out: bool, v: &Value) {
    if json_out {
        println!("{v}");
    } else if let Some(o) = v.as_object() {
        for (k, val) in o {
            let s = val.as_str().map_or_else(|| val.to_string(), str::to_owned);
            println!("{k}: {s}");
        }
    } else {
        println!("{v}");
    }
}

pub(crate) fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => vec![other],
    }
}
