//! CLIP image preprocessing, bit-exact with the PIL/torchvision pipeline OpenFlamingo uses:
//! `Resize(size, BICUBIC)` on the shortest side → `CenterCrop(size)` → convert to RGB → `ToTensor` →
//! `Normalize(mean, std)`.
//!
//! The resampler is a re-derivation of Pillow's two-pass separable convolution for 8-bit images:
//! double-precision filter weights normalised per output pixel, quantised to 22-bit fixed point, horizontal
//! pass first over the rows the vertical pass needs, rounding and clipping to u8 after each pass. Doing the
//! same integer arithmetic gives the same bytes as Pillow, so the only remaining source of difference to
//! PyTorch OpenFlamingo is the image decoder (JPEG IDCT/upsampling), which is measured in the tests.
//!
//! Colour modes follow Pillow: grey images are resized as one channel and replicated; images with alpha are
//! resized premultiplied and the alpha is then dropped (as `convert("RGB")` does). EXIF orientation is NOT
//! applied, because PIL's `Image.open` (and so OpenFlamingo) does not apply it.

use crate::model::manifest::{AlphaMode, Interpolation, Preprocess, ResizeMode};
use anyhow::{anyhow, Context, Result};
use std::path::Path;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// An 8-bit image with interleaved channels, as Pillow holds it.
#[derive(Debug, Clone)]
pub struct RawImage {
    pub width: usize,
    pub height: usize,
    /// 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    pub data: Vec<u8>,
    /// The file was a palette ("P" mode) image: Pillow resizes those with NEAREST whatever filter is asked.
    pub palette: bool,
    /// 4 channels are C, M, Y, K (resized as is, converted to RGB after the crop, as Pillow does) rather than
    /// RGBA.
    pub cmyk: bool,
}

/// Decodes an image file (JPEG through libjpeg-turbo as Pillow does — grey, RGB, CMYK/YCCK with Adobe
/// inversion; PNG — grey, grey+alpha, RGB, RGBA, palette, 16-bit reduced to 8-bit) into Pillow's 8-bit
/// layout. Errors name the file.
pub fn decode_image_file(path: &Path) -> Result<RawImage> {
    let bytes = std::fs::read(path).with_context(|| format!("could not read image {}", path.display()))?;
    decode_image_bytes(&bytes).with_context(|| format!("could not decode image {}", path.display()))
}

pub fn decode_image_bytes(bytes: &[u8]) -> Result<RawImage> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // libjpeg-turbo's decoder (via mozjpeg, same IDCT and upsampling as Pillow's). A JPEG it refuses is an
        // error: Pillow (libjpeg too) would refuse it, and another decoder's pixels would not match Pillow's.
        return decode_jpeg_libjpeg(bytes).context("not a JPEG that libjpeg (Pillow's decoder) can read");
    }
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| anyhow!("{e}"))?;
    if reader.format().is_none() {
        return Err(anyhow!("not a recognised image format (JPEG or PNG expected)"));
    }
    let img = reader.decode().map_err(|e| anyhow!("{e}"))?;
    use image::DynamicImage as D;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (channels, data) = match img {
        D::ImageLuma8(b) => (1, b.into_raw()),
        D::ImageLumaA8(b) => (2, b.into_raw()),
        D::ImageRgb8(b) => (3, b.into_raw()),
        D::ImageRgba8(b) => (4, b.into_raw()),
        D::ImageLuma16(_) => (1, img_to_luma8(&img)),
        D::ImageLumaA16(_) => (2, img.to_luma_alpha8().into_raw()),
        D::ImageRgba16(_) | D::ImageRgba32F(_) => (4, img.to_rgba8().into_raw()),
        _ => (3, img.to_rgb8().into_raw()),
    };
    if w == 0 || h == 0 {
        return Err(anyhow!("image has zero size"));
    }
    Ok(RawImage { width: w, height: h, channels, data, palette: is_indexed_png(bytes), cmyk: false })
}

/// Whether a JPEG has an Adobe APP14 marker (Pillow then reads CMYK as inverted, "CMYK;I").
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return false; // start of scan / end of image: no more headers
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xEE && bytes.get(i + 4..i + 9) == Some(b"Adobe") {
            return true;
        }
        i += 2 + len;
    }
    false
}

/// The JPEG bytes as libjpeg's data source, remembering whether libjpeg asked for data past the end. On a
/// truncated file libjpeg does not fail: it inserts a fake end-of-image marker, warns ("Premature end of JPEG
/// file") and returns grey filler for the missing rows. Pillow reads the same file through a suspending
/// source and raises "image file is truncated" (so OpenFlamingo stops on it); this is how we notice.
struct WatchedSource<'a> {
    data: &'a [u8],
    ran_out: &'a std::cell::Cell<bool>,
}

impl std::io::Read for WatchedSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        std::io::BufRead::consume(self, n);
        if n == 0 && !buf.is_empty() {
            self.ran_out.set(true);
        }
        Ok(n)
    }
}

impl std::io::BufRead for WatchedSource<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.data.is_empty() {
            self.ran_out.set(true);
        }
        Ok(self.data)
    }
    fn consume(&mut self, amt: usize) {
        self.data = &self.data[amt.min(self.data.len())..];
    }
}

fn decode_jpeg_libjpeg(bytes: &[u8]) -> Result<RawImage> {
    use mozjpeg::{ColorSpace, DctMethod, Decompress};
    let adobe = has_adobe_marker(bytes);
    let ran_out = std::cell::Cell::new(false);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> std::io::Result<RawImage> {
        let mut d = Decompress::new_reader(WatchedSource { data: bytes, ran_out: &ran_out })?;
        d.dct_method(DctMethod::IntegerSlow);
        d.do_fancy_upsampling(true);
        let (w, h) = d.size();
        let (channels, cmyk, mut started) = match d.color_space() {
            ColorSpace::JCS_GRAYSCALE => (1, false, d.grayscale()?),
            ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK => (4, true, d.to_colorspace(ColorSpace::JCS_CMYK)?),
            _ => (3, false, d.rgb()?),
        };
        let mut data: Vec<u8> = started.read_scanlines::<u8>()?;
        started.finish()?;
        if cmyk && adobe {
            data.iter_mut().for_each(|v| *v = 255 - *v);
        }
        Ok(RawImage { width: w, height: h, channels, data, palette: false, cmyk })
    }));
    if ran_out.get() {
        return Err(anyhow!(
            "image file is truncated: the data ends before the end of the image (Pillow, and so OpenFlamingo, \
             refuses it with \"image file is truncated\"; libjpeg alone would fill the missing part with grey)"
        ));
    }
    match result {
        Ok(Ok(img)) if img.width > 0 && img.height > 0 && img.data.len() == img.width * img.height * img.channels => Ok(img),
        Ok(Ok(_)) => Err(anyhow!("JPEG decoded to an unexpected size")),
        Ok(Err(e)) => Err(anyhow!("{e}")),
        Err(_) => Err(anyhow!("libjpeg could not decode the file")),
    }
}

fn is_indexed_png(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"\x89PNG") {
        return false;
    }
    png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .map(|r| r.info().color_type == png::ColorType::Indexed)
        .unwrap_or(false)
}

fn img_to_luma8(img: &image::DynamicImage) -> Vec<u8> {
    img.to_luma8().into_raw()
}

#[inline]
fn muldiv255(a: u32, b: u32) -> u8 {
    let tmp = a * b + 128;
    (((tmp >> 8) + tmp) >> 8) as u8
}

/// Pillow's RGBA → RGBa (and LA → La) premultiplication.
fn premultiply(img: &mut RawImage) {
    let c = img.channels;
    for px in img.data.chunks_exact_mut(c) {
        let alpha = px[c - 1] as u32;
        for v in &mut px[..c - 1] {
            *v = muldiv255(*v as u32, alpha);
        }
    }
}

/// Pillow's RGBa → RGBA un-premultiplication.
fn unpremultiply(img: &mut RawImage) {
    let c = img.channels;
    for px in img.data.chunks_exact_mut(c) {
        let alpha = px[c - 1] as u32;
        if alpha == 255 || alpha == 0 {
            continue;
        }
        for v in &mut px[..c - 1] {
            *v = ((255 * *v as u32) / alpha).min(255) as u8;
        }
    }
}

struct Filter {
    support: f64,
    f: fn(f64) -> f64,
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

fn filter_for(interp: Interpolation) -> Option<Filter> {
    match interp {
        Interpolation::Bicubic => Some(Filter { support: 2.0, f: bicubic }),
        Interpolation::Bilinear => Some(Filter { support: 1.0, f: bilinear }),
        Interpolation::Lanczos => Some(Filter { support: 3.0, f: lanczos }),
        Interpolation::Nearest => None,
    }
}

/// Per output pixel: first input index, number of taps, and fixed-point weights (ksize each).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn precompute_coeffs(in_size: usize, out_size: usize, filter: &Filter) -> Coeffs {
    let (in0, in1) = (0.0f64, in_size as f64);
    let scale = (in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support * filterscale;
    let ksize = (support.ceil() as usize) * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = in0 + (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize; // C (int) truncates toward zero
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax - xmin;
        let mut ww = 0.0;
        for x in 0..n {
            let w = (filter.f)((x as f64 + xmin as f64 - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for x in 0..ksize {
            let mut w = if x < n { k[x] } else { 0.0 };
            if x < n && ww != 0.0 {
                w /= ww;
            }
            let scaled = w * (1u64 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 { (-0.5 + scaled) as i32 } else { (0.5 + scaled) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coeffs { ksize, bounds, weights }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Pillow's `Image.resize((out_w, out_h), filter)` for 8-bit images (no box, no reducing_gap).
pub fn resize(img: &RawImage, out_w: usize, out_h: usize, interp: Interpolation) -> RawImage {
    if img.width == out_w && img.height == out_h {
        return img.clone();
    }
    let interp = if img.palette { Interpolation::Nearest } else { interp };
    let Some(filter) = filter_for(interp) else {
        return resize_nearest(img, out_w, out_h);
    };
    let has_alpha = (img.channels == 2 || img.channels == 4) && !img.cmyk;
    let mut src = img.clone();
    if has_alpha {
        premultiply(&mut src);
    }
    let c = src.channels;
    let horiz = precompute_coeffs(src.width, out_w, &filter);
    let vert = precompute_coeffs(src.height, out_h, &filter);
    let need_h = out_w != src.width;
    let need_v = out_h != src.height;
    let mut cur = src;
    let mut vbounds = vert.bounds.clone();
    if need_h {
        // Only the rows the vertical pass reads are resampled horizontally.
        let first = vert.bounds[0].0;
        let last = vert.bounds[out_h - 1].0 + vert.bounds[out_h - 1].1;
        let (y0, y1) = if need_v { (first, last) } else { (0, cur.height) };
        if need_v {
            for b in &mut vbounds {
                b.0 -= first;
            }
        }
        let rows = y1 - y0;
        let mut out = vec![0u8; out_w * rows * c];
        for y in 0..rows {
            let row = &cur.data[(y + y0) * cur.width * c..(y + y0 + 1) * cur.width * c];
            for xx in 0..out_w {
                let (xmin, n) = horiz.bounds[xx];
                let k = &horiz.weights[xx * horiz.ksize..xx * horiz.ksize + n];
                for ch in 0..c {
                    let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                    for (x, w) in k.iter().enumerate() {
                        ss = ss.wrapping_add(row[(xmin + x) * c + ch] as i32 * w);
                    }
                    out[(y * out_w + xx) * c + ch] = clip8(ss);
                }
            }
        }
        cur = RawImage { width: out_w, height: rows, channels: c, data: out, palette: false, cmyk: img.cmyk };
    }
    if need_v {
        let w = cur.width;
        let mut out = vec![0u8; w * out_h * c];
        for yy in 0..out_h {
            let (ymin, n) = vbounds[yy];
            let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
            for x in 0..w * c {
                let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                for (y, wt) in k.iter().enumerate() {
                    ss = ss.wrapping_add(cur.data[(ymin + y) * w * c + x] as i32 * wt);
                }
                out[yy * w * c + x] = clip8(ss);
            }
        }
        cur = RawImage { width: w, height: out_h, channels: c, data: out, palette: false, cmyk: img.cmyk };
    }
    if has_alpha {
        unpremultiply(&mut cur);
    }
    cur
}

fn resize_nearest(img: &RawImage, out_w: usize, out_h: usize) -> RawImage {
    // Pillow's scale-only affine transform: source coordinate accumulated in double from
    // `scale * 0.5` by `scale` per pixel, truncated (COORD), exactly as ImagingScaleAffine does.
    let c = img.channels;
    let table = |in_size: usize, out_size: usize| -> Vec<usize> {
        let a = in_size as f64 / out_size as f64;
        let mut v = a * 0.5;
        let mut t = Vec::with_capacity(out_size);
        for _ in 0..out_size {
            t.push(if v < 0.0 { 0 } else { (v as usize).min(in_size - 1) });
            v += a;
        }
        t
    };
    let (xs, ys) = (table(img.width, out_w), table(img.height, out_h));
    let mut data = vec![0u8; out_w * out_h * c];
    for (y, &iy) in ys.iter().enumerate() {
        for (x, &ix) in xs.iter().enumerate() {
            let s = (iy * img.width + ix) * c;
            data[(y * out_w + x) * c..(y * out_w + x + 1) * c].copy_from_slice(&img.data[s..s + c]);
        }
    }
    RawImage { width: out_w, height: out_h, channels: c, data, palette: img.palette, cmyk: img.cmyk }
}

/// torchvision `Resize(int)` output size: the shorter side becomes `size`, the longer one
/// `int(size * long / short)` (truncated).
pub fn shortest_side_size(w: usize, h: usize, size: usize) -> (usize, usize) {
    if w <= h {
        (size, ((size as f64) * h as f64 / w as f64) as usize)
    } else {
        (((size as f64) * w as f64 / h as f64) as usize, size)
    }
}

/// Python's round() (half to even) of a non-negative value.
fn round_half_even(x: f64) -> usize {
    let r = x.round();
    if (x - x.trunc() - 0.5).abs() == 0.0 && (r as i64) % 2 != 0 {
        (r - 1.0) as usize
    } else {
        r as usize
    }
}

/// Pillow's `alpha_composite(white RGBA, image.convert("RGBA")).convert("RGB")` — IdeficsImageProcessor's
/// `convert_to_rgb` for every image that is not RGB — as an RGB image (Pillow's 7-bit-precision integer
/// blend over an opaque background; checked exhaustively against Pillow for every colour/alpha pair).
pub fn composite_on_white(img: &RawImage) -> RawImage {
    if img.channels == 3 && !img.palette {
        return img.clone(); // "RGB": returned as is
    }
    const P: u32 = 7;
    let shift_div255 = |a: u32| ((a >> 8) + a) >> 8;
    let blend = |c: u32, a: u32| -> u8 {
        if a == 0 {
            return 255;
        }
        let outa = a * 255 + 255 * (255 - a);
        let coef1 = a * 255 * 255 * (1 << P) / outa;
        let coef2 = 255 * (1 << P) - coef1;
        (shift_div255(c * coef1 + 255 * coef2 + (0x80 << P)) >> P) as u8
    };
    let n = img.width * img.height;
    let mut data = Vec::with_capacity(n * 3);
    for i in 0..n {
        let px = &img.data[i * img.channels..(i + 1) * img.channels];
        let (rgb, a): ([u32; 3], u32) = if img.cmyk {
            let nk = 255 - px[3] as u32;
            let f = |c: u8| (nk as i32 - muldiv255(c as u32, nk) as i32).clamp(0, 255) as u32;
            ([f(px[0]), f(px[1]), f(px[2])], 255)
        } else {
            match img.channels {
                1 => ([px[0] as u32; 3], 255),
                2 => ([px[0] as u32; 3], px[1] as u32),
                3 => ([px[0] as u32, px[1] as u32, px[2] as u32], 255),
                _ => ([px[0] as u32, px[1] as u32, px[2] as u32], px[3] as u32),
            }
        };
        data.extend(rgb.iter().map(|&c| blend(c, a)));
    }
    RawImage { width: img.width, height: img.height, channels: 3, data, palette: false, cmyk: false }
}

/// Resize (shortest side + centre crop, or to exactly `size × size`) and normalise into CHW float32 pixels
/// (`[3, size, size]`, flattened).
pub fn preprocess(img: &RawImage, cfg: &Preprocess) -> Vec<f32> {
    let size = cfg.image_size as usize;
    let rgb;
    let img = match cfg.alpha {
        AlphaMode::Drop => img,
        AlphaMode::CompositeWhite => {
            rgb = composite_on_white(img);
            &rgb
        }
    };
    let (rw, rh) = match cfg.resize {
        ResizeMode::ShortestSide => shortest_side_size(img.width, img.height, size),
        ResizeMode::Exact => (size, size),
    };
    let resized = resize(img, rw, rh, cfg.interpolation);
    let top = round_half_even((rh as f64 - size as f64) / 2.0);
    let left = round_half_even((rw as f64 - size as f64) / 2.0);
    let c = resized.channels;
    let mut out = vec![0f32; 3 * size * size];
    for y in 0..size {
        for x in 0..size {
            // Pixels outside the resized image (only possible when size > image) are zero, as torchvision pads.
            let (sy, sx) = (y + top, x + left);
            let inside = sy < rh && sx < rw;
            for ch in 0..3 {
                let v = if !inside {
                    0u8
                } else {
                    let base = (sy * rw + sx) * c;
                    if resized.cmyk {
                        // Pillow's cmyk2rgb.
                        let nk = 255 - resized.data[base + 3] as u32;
                        (nk as i32 - muldiv255(resized.data[base + ch] as u32, nk) as i32).clamp(0, 255) as u8
                    } else {
                        match c {
                            1 | 2 => resized.data[base],
                            _ => resized.data[base + ch],
                        }
                    }
                };
                let f = v as f32 / 255.0f32;
                out[ch * size * size + y * size + x] = (f - cfg.mean[ch]) / cfg.std[ch];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_side_matches_torchvision() {
        assert_eq!(shortest_side_size(640, 480, 224), (298, 224));
        assert_eq!(shortest_side_size(480, 640, 224), (224, 298));
        assert_eq!(shortest_side_size(100, 100, 64), (64, 64));
    }

    #[test]
    fn python_round_is_half_even() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(37.0), 37);
    }

    #[test]
    fn identity_resize_keeps_pixels() {
        let img = RawImage { width: 2, height: 1, channels: 3, data: vec![1, 2, 3, 4, 5, 6], palette: false, cmyk: false };
        assert_eq!(resize(&img, 2, 1, Interpolation::Bicubic).data, img.data);
    }

    #[test]
    fn constant_image_stays_constant_under_bicubic() {
        let img = RawImage { width: 17, height: 9, channels: 3, data: vec![200; 17 * 9 * 3], palette: false, cmyk: false };
        let out = resize(&img, 5, 3, Interpolation::Bicubic);
        assert!(out.data.iter().all(|&v| v == 200));
    }
}
