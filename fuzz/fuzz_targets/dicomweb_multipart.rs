//! Any bytes as a STOW-RS request: the first line is the Content-Type header, the rest the
//! multipart/related body. The boundary is read from the header, then the body is split both at
//! once and by the streaming parser fed in uneven chunks (as the network delivers it); the two
//! must find the same parts. Errors are expected; a panic is a finding.
#![no_main]

use imaging::multipart::{self, Event, Splitter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(content_type) = std::str::from_utf8(header) else {
        return;
    };
    let Ok(boundary) = multipart::boundary(content_type) else {
        return;
    };
    let whole = multipart::parts(body, &boundary);

    let mut stream = Splitter::new(&boundary);
    let mut streamed: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    let mut chunk = 1;
    let mut rest = body;
    'feed: loop {
        let take = chunk.min(rest.len());
        stream.push(&rest[..take]);
        rest = &rest[take..];
        chunk = chunk * 3 % 97 + 1;
        loop {
            match stream.next_event() {
                Ok(Some(Event::Part { .. })) => streamed.push(Vec::new()),
                Ok(Some(Event::Data(bytes))) => match streamed.last_mut() {
                    Some(part) => part.extend_from_slice(&bytes),
                    None => panic!("data before any part started"),
                },
                Ok(Some(Event::End)) => {}
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    if let (Ok(parts), false, true) = (&whole, failed, stream.is_done()) {
        assert_eq!(parts, &streamed, "whole and streamed parsing disagree");
    }
});
