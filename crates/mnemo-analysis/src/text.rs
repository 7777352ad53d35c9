//! Token ids as readable text, for the prefixes of `mnemo analyze ffn` (Geva et al. 2021 show
//! each key's top "trigger" prefixes as text).
//!
//! Byte corpora (`LmUnit::Byte`) are decoded to UTF-8 (lossily: a prefix may start inside a
//! character), their `<0xNN>` names turned back into bytes; every other task joins its tokens
//! with single spaces. Newlines and tabs are shown as `\n` and `\t` so a prefix stays on one
//! line of the report.
use mnemo_data::{LmUnit, Vocab};

/// The tokens `ids` as one line of text.
pub fn render(vocab: &Vocab, ids: &[u32], unit: Option<LmUnit>) -> String {
    let text = match unit {
        Some(LmUnit::Byte) => {
            let bytes: Vec<u8> = ids
                .iter()
                .filter_map(|&id| byte_of(vocab.token(id)))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => ids
            .iter()
            .map(|&id| vocab.token(id))
            .collect::<Vec<_>>()
            .join(" "),
    };
    text.replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
}

/// The byte a byte-corpus token names: a printable character itself, or `<0xNN>`.
fn byte_of(token: &str) -> Option<u8> {
    match token.as_bytes() {
        [b] => Some(*b),
        _ => token
            .strip_prefix("<0x")
            .and_then(|t| t.strip_suffix('>'))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnemo_data::byte_corpus::{byte_id, byte_vocab};

    #[test]
    fn bytes_decode_and_words_join() {
        let vocab = byte_vocab();
        let ids: Vec<u32> = "a_b\nc é".bytes().map(byte_id).collect();
        assert_eq!(render(&vocab, &ids, Some(LmUnit::Byte)), "a_b\\nc é");
        let words = Vocab::build(["x", "=", "4", ";"]);
        let ids: Vec<u32> = ["x", "=", "4"]
            .iter()
            .map(|t| words.id(t).unwrap())
            .collect();
        assert_eq!(render(&words, &ids, None), "x = 4");
    }
}
