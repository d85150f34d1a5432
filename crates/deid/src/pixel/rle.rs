//! RLE Lossless (PS3.5 Annex G): the lossless form written for cleaned
//! images whose original codec has no encoder here, and its decoder, which
//! checks every offset and length of a fragment against its bytes.

/// Most bytes PackBits decodes from one byte: a 2-byte run packet gives 128.
const MAX_EXPANSION: usize = 64;

/// Decode one frame (one fragment) of `cols` x `rows` pixels, `samples`
/// per pixel and `bytes` per sample, to interleaved little-endian samples
/// (pixel by pixel). Checks the header's segment count and offsets, and
/// that the segments can hold the frame, before allocating for it.
pub fn decode_frame(
    fragment: &[u8],
    cols: usize,
    rows: usize,
    samples: usize,
    bytes: usize,
) -> Result<Vec<u8>, String> {
    let word = |i: usize| {
        fragment
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0).ok_or("fragment shorter than its RLE header")?;
    let segments = samples * bytes;
    if count < segments || count > 15 {
        return Err(format!(
            "{count} RLE segments for {samples} samples of {bytes} bytes"
        ));
    }
    let plane = cols.checked_mul(rows).ok_or("frame size overflows")?;
    let mut ranges = Vec::with_capacity(segments);
    for s in 0..segments {
        let start = word(1 + s).ok_or("fragment shorter than its RLE header")?;
        let end = if s + 1 < count {
            word(2 + s).ok_or("fragment shorter than its RLE header")?
        } else {
            fragment.len()
        };
        if start < 64 || start > end || end > fragment.len() {
            return Err(format!(
                "segment {} at bytes {start}..{end} of a {}-byte fragment",
                s + 1,
                fragment.len()
            ));
        }
        if plane > MAX_EXPANSION * (end - start) {
            return Err(format!(
                "segment {} of {} bytes cannot hold {plane} bytes",
                s + 1,
                end - start
            ));
        }
        ranges.push(start..end);
    }
    let mut frame = vec![0u8; plane * segments];
    for (s, range) in ranges.into_iter().enumerate() {
        // segments go most significant byte first; samples are little endian
        let offset = (s / bytes) * bytes + (bytes - 1 - s % bytes);
        let decoded = unpack_into(&fragment[range], &mut frame[offset..], segments, plane);
        if decoded < plane {
            return Err(format!(
                "segment {} decodes to {decoded} bytes, {plane} expected",
                s + 1
            ));
        }
    }
    Ok(frame)
}

/// Unpack PackBits `data` into every `stride`-th byte of `out`, at most
/// `limit` bytes (what follows is padding); returns how many were written.
fn unpack_into(data: &[u8], out: &mut [u8], stride: usize, limit: usize) -> usize {
    let mut slots = out.iter_mut().step_by(stride).take(limit);
    let mut written = 0;
    let mut i = 0;
    while i < data.len() && written < limit {
        let header = data[i] as i8;
        i += 1;
        let (value, repeat) = match header {
            0..=127 => {
                let n = header as usize + 1;
                let literal = data.get(i..).unwrap_or_default().iter().take(n);
                // the literal first: zip stops on it without taking a slot
                for (&v, slot) in literal.zip(slots.by_ref()) {
                    *slot = v;
                    written += 1;
                }
                i += n;
                continue;
            }
            // -128: no operation
            -128 => continue,
            _ => (data.get(i), (1 - isize::from(header)) as usize),
        };
        let Some(&value) = value else { break };
        for slot in slots.by_ref().take(repeat) {
            *slot = value;
            written += 1;
        }
        i += 1;
    }
    written
}

/// Encode one frame of interleaved samples (`samples` per pixel, `bytes`
/// per sample, little endian) as one RLE fragment.
pub fn encode_frame(
    frame: &[u8],
    cols: usize,
    rows: usize,
    samples: usize,
    bytes: usize,
) -> Vec<u8> {
    let segments = samples * bytes;
    let mut header = [0u32; 16];
    header[0] = segments as u32;
    let mut body = Vec::with_capacity(frame.len() / 2);
    let mut plane = vec![0u8; cols];
    for s in 0..samples {
        // most significant byte first
        for b in (0..bytes).rev() {
            header[1 + s * bytes + (bytes - 1 - b)] = (64 + body.len()) as u32;
            for y in 0..rows {
                for (x, slot) in plane.iter_mut().enumerate() {
                    *slot = frame[((y * cols + x) * samples + s) * bytes + b];
                }
                pack_bits(&plane, &mut body);
            }
        }
    }
    let mut out = Vec::with_capacity(64 + body.len() + 1);
    for word in header {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&body);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// PackBits one row: runs of 2..=128 equal bytes as `257 - n, byte`,
/// everything else as literals of up to 128 bytes.
fn pack_bits(row: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < row.len() {
        let run = row[i..]
            .iter()
            .take(128)
            .take_while(|&&v| v == row[i])
            .count();
        if run >= 2 {
            out.push((257 - run) as u8);
            out.push(row[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < row.len() && i - start < 128 {
            if i + 1 < row.len() && row[i] == row[i + 1] {
                break;
            }
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&row[start..i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(mut data: &[u8], expected: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < expected {
            let n = data[0] as i8;
            if n >= 0 {
                out.extend_from_slice(&data[1..=n as usize + 1]);
                data = &data[n as usize + 2..];
            } else {
                out.extend(std::iter::repeat_n(data[1], (1 - i32::from(n)) as usize));
                data = &data[2..];
            }
        }
        out
    }

    #[test]
    fn pack_bits_round_trips_runs_and_literals() {
        let row: Vec<u8> = [vec![7; 300], (0..=255).collect(), vec![1, 2, 2, 3]].concat();
        let mut packed = Vec::new();
        pack_bits(&row, &mut packed);
        assert!(packed.len() < row.len());
        assert_eq!(unpack(&packed, row.len()), row);
    }

    #[test]
    fn frames_round_trip_through_the_decoder() {
        for (samples, bytes) in [(1, 1), (1, 2), (3, 1), (3, 2)] {
            let (cols, rows) = (37, 5);
            let frame: Vec<u8> = (0..cols * rows * samples * bytes)
                .map(|i| if i % 50 < 30 { 9 } else { (i * 7) as u8 })
                .collect();
            let encoded = encode_frame(&frame, cols, rows, samples, bytes);
            assert_eq!(
                decode_frame(&encoded, cols, rows, samples, bytes).expect("decoded"),
                frame,
                "{samples} samples of {bytes} bytes"
            );
        }
    }

    #[test]
    fn truncated_or_lying_fragments_are_errors() {
        let frame = vec![5u8; 64 * 64];
        let encoded = encode_frame(&frame, 64, 64, 1, 1);
        for cut in [0, 3, 40, 64, 66, encoded.len() - 1] {
            assert!(
                decode_frame(&encoded[..cut], 64, 64, 1, 1).is_err(),
                "cut at {cut}"
            );
        }
        // a segment offset past the end of the fragment
        let mut lying = encoded.clone();
        lying[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(decode_frame(&lying, 64, 64, 1, 1).is_err());
        // 4 G pixels cannot come out of a few hundred bytes: refused before allocating
        let error = decode_frame(&encoded, 65535, 65535, 1, 1).expect_err("too small");
        assert!(error.contains("cannot hold"), "{error}");
    }

    #[test]
    fn sixteen_bit_rgb_frame_has_six_segments_most_significant_byte_first() {
        let frame: Vec<u8> = (0..2 * 2 * 3 * 2).map(|v| v as u8).collect();
        let encoded = encode_frame(&frame, 2, 2, 3, 2);
        let word =
            |i: usize| u32::from_le_bytes(encoded[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        assert_eq!(word(0), 6);
        assert_eq!(word(1), 64);
        // first segment: high bytes of red of the 4 pixels: 1, 7, 13, 19
        let first = &encoded[word(1) as usize..word(2) as usize];
        assert_eq!(unpack(first, 2), [1, 7]);
    }
}
