// Integer and bool label values are formatted on the stack, in declaration order.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Numbers {
    a: u8,
    b: u16,
    c: u32,
    d: u64,
    e: u128,
    f: usize,
    g: i8,
    h: i16,
    i: i32,
    j: i64,
    k: i128,
    l: isize,
    success: bool,
    #[label(rename = "retried")]
    retry: bool,
}

fn main() {
    assert_eq!(
        Numbers::NAMES,
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "success", "retried"]
    );
    let n = Numbers {
        a: 0,
        b: 7,
        c: 42,
        d: u64::MAX,
        e: u128::MAX,
        f: 3,
        g: -1,
        h: i16::MIN,
        i: -42,
        j: 0,
        k: i128::MIN,
        l: -3,
        success: true,
        retry: false,
    };
    let u64_max = u64::MAX.to_string();
    let u128_max = u128::MAX.to_string();
    let i16_min = i16::MIN.to_string();
    let i128_min = i128::MIN.to_string();
    n.with_values(|v| {
        assert_eq!(
            v,
            [
                "0",
                "7",
                "42",
                u64_max.as_str(),
                u128_max.as_str(),
                "3",
                "-1",
                i16_min.as_str(),
                "-42",
                "0",
                i128_min.as_str(),
                "-3",
                "true",
                "false",
            ]
        );
    });
}
