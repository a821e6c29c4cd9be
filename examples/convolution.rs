//! Image filters: a Gaussian blur, then a sharpen, on an image split over every rank. Each filter reads a
//! neighbourhood of its pixels, so borders between ranks travel each pass. The image is generated, or read from a
//! PNG (`--input`); the result is written as PNG and checked against a serial reference.
//!
//! Shows: neighbourhood reads of different radii, two kernels from one file, a 2D split, a PNG round trip.
//!
//! ```text
//! cargo run --release --example convolution -- [--size 512] [--radius 3] [--input in.png] [--out out/convolution.png]
//! mpirun -n 2 target/release/examples/convolution
//! ```

use celer::{access, kernels, task, Kernel, Queue};

/// A grayscale image in [0, 1], row-major.
struct Image {
    h: usize,
    w: usize,
    px: Vec<f32>,
}

fn generated(n: usize) -> Image {
    let px = (0..n * n)
        .map(|k| {
            let (i, j) = ((k / n) as f32 / n as f32, (k % n) as f32 / n as f32);
            let checker = (((i * 8.0) as usize + (j * 8.0) as usize) % 2) as f32 * 0.5;
            let disc = if (i - 0.5).powi(2) + (j - 0.5).powi(2) < 0.09 { 0.4 } else { 0.0 };
            checker + disc
        })
        .collect();
    Image { h: n, w: n, px }
}

/// Reads a PNG (8-bit gray, gray with alpha, RGB or RGBA) as gray values in [0, 1].
fn read_png(path: &str) -> Result<Image, Box<dyn std::error::Error>> {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    // Palettes and 16-bit samples become 8-bit RGB(A) or gray.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let gray = |c: &[u8]| match c.len() {
        1 | 2 => c[0] as f32 / 255.0,
        _ => (0.299 * c[0] as f32 + 0.587 * c[1] as f32 + 0.114 * c[2] as f32) / 255.0,
    };
    let px = buf[..frame.buffer_size()].chunks(channels).map(gray).collect();
    Ok(Image { h, w, px })
}

/// Writes the image as an 8-bit gray PNG.
fn write_png(path: &str, img: &Image) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let gray: Vec<u8> = img.px.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0) as u8).collect();
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, img.w as u32, img.h as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&gray)?;
    Ok(())
}

/// Serial reference with the kernels' arithmetic.
fn filter(img: &Image, r: usize, sharpen: bool) -> Vec<f32> {
    let (h, w) = (img.h as i64, img.w as i64);
    let px = |i: i64, j: i64| img.px[(i.clamp(0, h - 1) * w + j.clamp(0, w - 1)) as usize];
    let mut out = vec![0.0f32; img.px.len()];
    for i in 0..h {
        for j in 0..w {
            out[(i * w + j) as usize] = if sharpen {
                5.0 * px(i, j) - (px(i - 1, j) + px(i + 1, j) + px(i, j - 1) + px(i, j + 1))
            } else {
                let r = r as i64;
                let s2 = 2.0 * (r as f32 * 0.5).powi(2);
                let (mut sum, mut wsum) = (0.0f32, 0.0f32);
                for di in -r..=r {
                    for dj in -r..=r {
                        let wt = (-((di * di + dj * dj) as f32) / s2).exp();
                        sum += wt * px(i + di, j + dj);
                        wsum += wt;
                    }
                }
                sum / wsum
            };
        }
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // celer's rank-prefixed logger, at the level of CELER_LOG (celer installs none unless asked).
    celer::logging::init();
    let mut n = if cfg!(debug_assertions) { 64 } else { 512 };
    let mut r = 3usize;
    let mut input = None;
    let mut out_path = String::from("out/convolution.png");
    let args = <Args as clap::Parser>::parse();
    if let Some(v) = args.size {
        n = v.parse()?;
    }
    if let Some(v) = args.radius {
        r = v.parse()?;
    }
    if let Some(v) = args.input {
        input = Some(v);
    }
    if let Some(v) = args.out {
        out_path = v;
    }
    let img = match &input {
        Some(path) => read_png(path)?,
        None => generated(n),
    };
    let (h, w) = (img.h, img.w);
    let q = Queue::new()?;
    let src = q.buffer_from(&img.px, [h, w]).named("image");
    let blurred = q.buffer::<f32, 2>([h, w]).named("blurred");
    let sharp = q.buffer::<f32, 2>([h, w]).named("sharpened");
    let blur = Kernel::wgsl(&kernels::CONVOLUTION, "blur")?;
    let sharpen = Kernel::wgsl(&kernels::CONVOLUTION, "sharpen")?;
    q.submit(
        task::parallel_for(&blur, [h, w])
            .read(&src, access::neighborhood([r, r]))
            .discard_write(&blurred, access::one_to_one())
            .scalars(&[r as u32, h as u32, w as u32])
            .split_2d(),
    )?;
    q.submit(
        task::parallel_for(&sharpen, [h, w])
            .read(&blurred, access::neighborhood_along_axes([1, 1]))
            .discard_write(&sharp, access::one_to_one())
            .scalars(&[0, h as u32, w as u32])
            .split_2d(),
    )?;
    let result = Image { h, w, px: q.fence(&sharp)?.wait()? };
    let rank = q.rank();
    if rank == 0 {
        write_png(&out_path, &result)?;
        println!(
            "convolution: {h}x{w} image, blur radius {r}, then sharpen, on {} rank(s); wrote {out_path}",
            q.ranks()
        );
    }
    if let Some(stats) = q.stats() {
        println!("convolution: {stats}");
    }
    let want = filter(&Image { h, w, px: filter(&img, r, false) }, 1, true);
    let worst = result.px.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    if worst > 1e-4 {
        eprintln!("convolution: rank {rank}: MISMATCH: largest difference from the serial reference {worst:e}");
        std::process::exit(1);
    }
    println!("convolution: rank {rank}: verified against the serial reference (largest difference {worst:.1e})");
    Ok(())
}

/// Image filters: a Gaussian blur, then a sharpen, on an image split over every rank.
#[derive(clap::Parser)]
struct Args {
    /// Size of the generated image: N x N pixels (default 64 in debug builds, 512 in release).
    #[arg(long, value_name = "N")]
    size: Option<String>,
    /// Radius of the blur (default 3).
    #[arg(long, value_name = "R")]
    radius: Option<String>,
    /// Read the image from this PNG instead of generating it.
    #[arg(long, value_name = "FILE")]
    input: Option<String>,
    /// Where to write the result as PNG (default out/convolution.png).
    #[arg(long, value_name = "FILE")]
    out: Option<String>,
}
