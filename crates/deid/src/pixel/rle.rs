//! RLE Lossless encoding (PS3.5 Annex G): the lossless form written for
//! cleaned images whose original codec has no encoder here.

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
