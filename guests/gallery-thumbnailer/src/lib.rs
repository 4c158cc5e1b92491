//! Makes half-size thumbnails of binary PGM (P5) images. The demo grants this package
//! one directory, which it sees as `/out`, and nothing else.

wit_bindgen::generate!({
    // The WASI packages first: gallery.wit uses their types (in `metadata`).
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
    ],
    world: "example:gallery/thumbnailer",
});

use exports::example::gallery::thumbnails::Guest;

struct Thumbnailer;

impl Guest for Thumbnailer {
    fn make(name: String, image: Vec<u8>) -> Result<String, String> {
        check_file_name(&name)?;
        let source = Pgm::parse(&image)?;
        let thumb = source.half();
        let path = format!("/out/{name}");
        std::fs::write(&path, thumb.encode()).map_err(|e| format!("cannot write {path}: {e}"))?;
        Ok(format!(
            "{name}: {}x{} -> {}x{}, written to {path}",
            source.width, source.height, thumb.width, thumb.height
        ))
    }
}

export!(Thumbnailer);

/// Accepts only a plain file name, so a caller cannot make the thumbnailer write
/// outside `/out` (the grant would refuse that too, but the error is clearer here).
fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.contains("..") {
        return Err(format!("{name:?} is not a plain file name"));
    }
    Ok(())
}

/// An 8-bit greyscale image.
struct Pgm {
    width: usize,
    height: usize,
    /// The value that means white (at most 255: one byte per pixel).
    maxval: u8,
    /// `width * height` pixels, row by row.
    pixels: Vec<u8>,
}

/// Largest width or height accepted, so a hostile header cannot ask for a huge buffer.
const MAX_SIDE: usize = 16_384;

impl Pgm {
    /// Parses a binary PGM: `P5`, width, height and maxval as ASCII decimals separated
    /// by whitespace (with `#` comments running to the end of a line), then exactly one
    /// whitespace byte, then the raster.
    fn parse(data: &[u8]) -> Result<Self, String> {
        let mut header = Header { data, pos: 0 };
        if header.token()? != b"P5" {
            return Err("not a binary PGM (P5) image".to_owned());
        }
        let width = header.number("width")?;
        let height = header.number("height")?;
        let maxval = header.number("maxval")?;
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!("unsupported size {width}x{height}"));
        }
        let maxval = match u8::try_from(maxval) {
            Ok(maxval) if maxval > 0 => maxval,
            _ => return Err(format!("unsupported maxval {maxval} (1 to 255 only)")),
        };
        // Exactly one whitespace byte ends the header; the raster starts right after it
        // (so a raster beginning with whitespace-valued bytes is not skipped).
        if !data.get(header.pos).is_some_and(u8::is_ascii_whitespace) {
            return Err("no whitespace after the PGM header".to_owned());
        }
        let start = header.pos + 1;
        let len = width * height;
        let pixels = data
            .get(start..start + len)
            .ok_or_else(|| format!("truncated image: expected {len} pixel bytes"))?;
        Ok(Pgm {
            width,
            height,
            maxval,
            pixels: pixels.to_vec(),
        })
    }

    /// Halves both sides (rounding down, but at least 1 pixel), each new pixel the
    /// rounded average of the (up to) 2x2 block it replaces.
    fn half(&self) -> Pgm {
        let width = (self.width / 2).max(1);
        let height = (self.height / 2).max(1);
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                let mut sum = 0u32;
                let mut count = 0u32;
                for sy in (2 * y)..(2 * y + 2).min(self.height) {
                    for sx in (2 * x)..(2 * x + 2).min(self.width) {
                        sum += u32::from(self.pixels[sy * self.width + sx]);
                        count += 1;
                    }
                }
                // count >= 1, and the average of bytes fits in a byte.
                pixels.push(((sum + count / 2) / count) as u8);
            }
        }
        Pgm {
            width,
            height,
            maxval: self.maxval,
            pixels,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n{}\n", self.width, self.height, self.maxval).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }
}

/// A cursor over the ASCII header of a PGM file.
struct Header<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Header<'a> {
    /// Skips whitespace and comments, then returns the next run of non-whitespace.
    fn token(&mut self) -> Result<&'a [u8], String> {
        loop {
            match self.data.get(self.pos) {
                Some(b) if b.is_ascii_whitespace() => self.pos += 1,
                Some(b'#') => {
                    while self.data.get(self.pos).is_some_and(|&b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                Some(_) => break,
                None => return Err("truncated PGM header".to_owned()),
            }
        }
        let start = self.pos;
        while self
            .data
            .get(self.pos)
            .is_some_and(|&b| !b.is_ascii_whitespace() && b != b'#')
        {
            self.pos += 1;
        }
        Ok(&self.data[start..self.pos])
    }

    fn number(&mut self, what: &str) -> Result<usize, String> {
        let token = self.token()?;
        std::str::from_utf8(token)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                format!(
                    "bad {what} in PGM header: {:?}",
                    String::from_utf8_lossy(token)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_with_comments_and_odd_sizes() {
        let mut data = b"P5\n# a comment\n5 3 # trailing\n255\n".to_vec();
        data.extend([10, 20, 30, 40, 50, 11, 21, 31, 41, 51, 0, 0, 0, 0, 0]);
        let source = Pgm::parse(&data).unwrap();
        assert_eq!((source.width, source.height), (5, 3));
        let thumb = source.half();
        assert_eq!((thumb.width, thumb.height), (2, 1));
        // (10 + 20 + 11 + 21) / 4 = 15.5 -> 16; (30 + 40 + 31 + 41) / 4 = 35.5 -> 36.
        assert_eq!(thumb.pixels, [16, 36]);
        assert_eq!(thumb.encode(), b"P5\n2 1\n255\n\x10\x24");
    }

    #[test]
    fn one_pixel_stays_one_pixel() {
        let thumb = Pgm::parse(b"P5 1 1 255 \x07").unwrap().half();
        assert_eq!((thumb.width, thumb.height, thumb.pixels), (1, 1, vec![7]));
    }

    #[test]
    fn raster_may_start_with_a_whitespace_byte() {
        let thumb = Pgm::parse(b"P5\n2 1\n255\n\x0a\x20").unwrap();
        assert_eq!(thumb.pixels, [0x0a, 0x20]);
    }

    #[test]
    fn rejects_bad_images() {
        assert!(Pgm::parse(b"P2\n1 1\n255\n0").is_err());
        assert!(Pgm::parse(b"P5\n2 2\n255\n\x01\x02\x03").is_err());
        assert!(Pgm::parse(b"P5\n1 1\n65535\n\x00\x00").is_err());
        assert!(Pgm::parse(b"P5\n0 1\n255\n").is_err());
        assert!(Pgm::parse(b"P5\n1 1\n255").is_err());
    }

    #[test]
    fn refuses_paths() {
        for name in ["", "../x.pgm", "a/b.pgm", "..", "/etc/passwd", "a\\b"] {
            assert!(check_file_name(name).is_err(), "{name:?}");
        }
        assert!(check_file_name("city.pgm").is_ok());
    }
}
