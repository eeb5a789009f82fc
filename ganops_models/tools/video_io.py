"""Write uint8 RGB frames to a video: ``.mp4`` (H.264, yuv420p, through imageio-ffmpeg's bundled ffmpeg;
NVIDIA's tools write the same with imageio) or ``.gif`` (Pillow, looping forever). A video appears under
its name only when finished: it is written to a temporary name beside it and renamed by ``close()``; an
error or an interrupt inside ``with VideoWriter(...)`` removes the partial file."""
import contextlib
import os

import numpy as np
from PIL import Image

from ganops_models.extras import require
from ganops_models.files import temporary_path

FORMATS = (".mp4", ".gif")


def check_video_path(path: str) -> str:
    """The lower-case extension of ``path`` if it is a supported video format, else ValueError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"video output must end in .mp4 (H.264) or .gif, got {path!r}")
    return ext


class VideoWriter:
    """``with VideoWriter(path, fps) as v: v.append(frame)`` with frames HxWx3 uint8 of one size.
    mp4 frames need even sides (yuv420p); ``bitrate`` as ffmpeg takes it (NVIDIA uses '12M'/'16M')."""

    def __init__(self, path: str, fps: float, bitrate: str = "12M"):
        self.ext = check_video_path(path)
        if fps <= 0:
            raise ValueError(f"--fps must be > 0, got {fps}")
        self.path, self.fps, self.bitrate = path, fps, bitrate
        self._gif_frames = []
        self._ffmpeg = None
        self.count = 0
        self._temporary = temporary_path(path, self.ext)
        self._tmp = self._temporary.__enter__()

    def append(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be HxWx3 uint8, got {frame.dtype} {list(frame.shape)}")
        if self.ext == ".gif":
            self._gif_frames.append(Image.fromarray(frame))
        else:
            if self._ffmpeg is None:
                self._ffmpeg = self._open_mp4(frame.shape[1], frame.shape[0])
            self._ffmpeg.send(np.ascontiguousarray(frame))
        self.count += 1

    def _open_mp4(self, width: int, height: int):
        imageio_ffmpeg = require("imageio_ffmpeg", "video", "writing .mp4 (or write a .gif)")
        if width % 2 or height % 2:
            raise ValueError(f"H.264 (yuv420p) needs even frame sides, got {width}x{height}; write a .gif")
        gen = imageio_ffmpeg.write_frames(self._tmp, (width, height), fps=self.fps, codec="libx264",
                                          pix_fmt_in="rgb24", pix_fmt_out="yuv420p", bitrate=self.bitrate,
                                          quality=None, macro_block_size=1, ffmpeg_log_level="error")
        gen.send(None)
        return gen

    def close(self) -> None:
        """Finish the video and give it its name."""
        if self._temporary is None:
            return
        try:
            if self.ext == ".gif" and self._gif_frames:
                first, *rest = self._gif_frames
                first.save(self._tmp, format="GIF", save_all=True, append_images=rest,
                           duration=round(1000 / self.fps), loop=0)
                self._gif_frames = []
            elif self._ffmpeg is not None:
                self._ffmpeg.close()
                self._ffmpeg = None
        except BaseException as e:
            self.abort(e)
            raise
        temporary, self._temporary = self._temporary, None
        temporary.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        """Stop without finishing: ffmpeg is stopped and the partial file removed."""
        if self._ffmpeg is not None:
            with contextlib.suppress(BaseException):
                self._ffmpeg.throw(KeyboardInterrupt())
            self._ffmpeg = None
        self._gif_frames = []
        if self._temporary is not None:
            temporary, self._temporary = self._temporary, None
            with contextlib.suppress(type(exc)):
                temporary.__exit__(type(exc), exc, exc.__traceback__)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            self.close()
        else:
            self.abort(exc)
