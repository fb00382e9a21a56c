"""Image-quality and rate–distortion metrics; one module per metric, named like its function.

``psnr.psnr``, ``ms_ssim.ms_ssim`` / ``ms_ssim_db``, ``lpips.lpips`` (+ ``load_lpips_params``),
``fid.fid`` / ``fid.kid`` / ``fid.extract_patches`` with ``inception.inception_features``,
``bd.bd_rate`` / ``bd.bd_psnr`` / ``bd.bd_quality``; ``rd`` (per-image records, curves, TSV),
``plots.plot_rd``, ``classic_codecs`` (Pillow JPEG / WebP anchors). See docs/metrics.md.
"""
