//! Bodies read with a ceiling, inbound and outbound alike.
//!
//! A body arrives as a stream of chunks. Reading it whole and measuring
//! afterwards (`bytes()`) lets a chunked body with no `Content-Length`
//! make us buffer any amount before the size check runs. Here the
//! declared length is checked before the first chunk is read, and a
//! running count refuses the body the moment it passes the ceiling, so
//! at most one chunk past the ceiling is ever held.

// Natively only the tests read bodies this way; the Workers glue does.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use futures_util::{Stream, StreamExt};

/// Why a bounded read stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError<E> {
    /// The declared or counted length passed the ceiling.
    TooLarge,
    /// The stream itself failed.
    Stream(E),
}

/// Whether a declared `Content-Length` already exceeds `cap`. A value
/// that is not a plain decimal number is left to the running count (the
/// runtime has framed the body by then; RFC 9110 §8.6).
pub fn declared_too_large(content_length: Option<&str>, cap: usize) -> bool {
    let cap = u64::try_from(cap).unwrap_or(u64::MAX);
    content_length
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        // Digits too many for a u64 are certainly past the ceiling.
        .is_some_and(|v| v.parse::<u64>().map_or(true, |n| n > cap))
}

/// Reads `chunks` to the end, refusing past `cap` bytes.
pub async fn read_capped<S, E>(
    mut chunks: S,
    content_length: Option<&str>,
    cap: usize,
) -> Result<Vec<u8>, BodyError<E>>
where
    S: Stream<Item = Result<Vec<u8>, E>> + Unpin,
{
    if declared_too_large(content_length, cap) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(BodyError::Stream)?;
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;
    use futures_util::stream;
    use std::cell::Cell;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Vec<u8>, ()>> + Unpin {
        stream::iter(sizes.iter().map(|&n| Ok(vec![b'x'; n])).collect::<Vec<_>>())
    }

    #[test]
    fn bodies_up_to_the_cap_are_read_whole() {
        let body = block_on(read_capped(chunks(&[3, 4, 3]), None, 10)).unwrap();
        assert_eq!(body.len(), 10);
        let empty = block_on(read_capped(chunks(&[]), Some("0"), 10)).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn a_running_count_refuses_an_undeclared_body_past_the_cap() {
        assert_eq!(
            block_on(read_capped(chunks(&[6, 5]), None, 10)),
            Err(BodyError::TooLarge)
        );
    }

    #[test]
    fn reading_stops_at_the_chunk_that_passes_the_cap() {
        // An endless stream: only stopping early ends this test.
        let pulled = Cell::new(0usize);
        let endless = stream::repeat_with(|| {
            pulled.set(pulled.get() + 1);
            Ok::<_, ()>(vec![0u8; 1024])
        });
        assert_eq!(
            block_on(read_capped(endless, None, 10 * 1024)),
            Err(BodyError::TooLarge)
        );
        assert_eq!(pulled.get(), 11);
    }

    #[test]
    fn a_declared_length_past_the_cap_is_refused_before_reading() {
        let pulled = Cell::new(false);
        let watched = stream::iter([()]).map(|()| {
            pulled.set(true);
            Ok::<_, ()>(vec![0u8; 1])
        });
        assert_eq!(
            block_on(read_capped(watched, Some("11"), 10)),
            Err(BodyError::TooLarge)
        );
        assert!(!pulled.get(), "no chunk read");
    }

    #[test]
    fn declared_lengths() {
        let cases = [
            (None, false),
            (Some("10"), false),
            (Some(" 10 "), false),
            (Some("11"), true),
            (Some("99999999999999999999999"), true),
            (Some("-1"), false),
            (Some("ten"), false),
        ];
        for (declared, refused) in cases {
            assert_eq!(declared_too_large(declared, 10), refused, "{declared:?}");
        }
    }

    #[test]
    fn a_lying_short_declaration_is_still_counted() {
        assert_eq!(
            block_on(read_capped(chunks(&[8, 8]), Some("4"), 10)),
            Err(BodyError::TooLarge)
        );
    }

    #[test]
    fn stream_failures_are_passed_on() {
        let failing = stream::iter([Ok(vec![1u8]), Err("reset")]);
        assert_eq!(
            block_on(read_capped(failing, None, 10)),
            Err(BodyError::Stream("reset"))
        );
    }
}
