//! Corrupt copies of fixtures (shared by the deid and cli tests): what a
//! broken device or a hostile sender might send.

fn find(bytes: &[u8], pattern: &[u8]) -> usize {
    bytes
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("pattern present")
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize
}

/// An RLE Lossless file (explicit little endian, one frame) whose last RLE
/// segment is cut in half: the item lengths agree with the bytes, so the
/// file parses, and the RLE decoder finds a segment too short for a frame.
pub fn truncated_rle(bytes: &[u8]) -> Vec<u8> {
    let pixel_data = [
        0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let table = find(bytes, &pixel_data) + pixel_data.len();
    assert_eq!(
        bytes[table..table + 4],
        [0xFE, 0xFF, 0x00, 0xE0],
        "offset table"
    );
    let item = table + 8 + u32_at(bytes, table + 4);
    assert_eq!(
        bytes[item..item + 4],
        [0xFE, 0xFF, 0x00, 0xE0],
        "first fragment"
    );
    let (fragment, len) = (item + 8, u32_at(bytes, item + 4));
    let segments = u32_at(bytes, fragment);
    let last = u32_at(bytes, fragment + 4 * segments);
    let keep = (last + (len - last) / 2) & !1;
    let mut out = bytes[..item].to_vec();
    out.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
    out.extend_from_slice(&(keep as u32).to_le_bytes());
    out.extend_from_slice(&bytes[fragment..fragment + keep]);
    out.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
    out
}

/// A native explicit little endian file whose Pixel Data declares
/// `declared` bytes, whatever follows it.
pub fn lying_pixel_data_length(bytes: &[u8], declared: u32) -> Vec<u8> {
    let at = [b"OW", b"OB"]
        .iter()
        .find_map(|vr| {
            let header = [0xE0, 0x7F, 0x10, 0x00, vr[0], vr[1], 0, 0];
            bytes.windows(8).rposition(|w| w == header)
        })
        .expect("native Pixel Data");
    let mut out = bytes.to_vec();
    out[at + 8..at + 12].copy_from_slice(&declared.to_le_bytes());
    out
}
