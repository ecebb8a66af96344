"""A real touch for the kiosk's window on Xvfb: a pointer click through the XTEST extension (libXtst),
which SDL receives as a mouse button event and Kivy as a touch."""

from __future__ import annotations

import ctypes
import time


def click(display: str, x: int, y: int) -> None:
    x11 = ctypes.CDLL("libX11.so.6")
    xtst = ctypes.CDLL("libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeMotionEvent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_ulong,
    ]
    xtst.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise RuntimeError(f"cannot open X display {display}")
    try:
        xtst.XTestFakeMotionEvent(handle, -1, x, y, 0)
        x11.XFlush(handle)
        time.sleep(0.05)
        xtst.XTestFakeButtonEvent(handle, 1, 1, 0)
        x11.XFlush(handle)
        time.sleep(0.08)
        xtst.XTestFakeButtonEvent(handle, 1, 0, 0)
        x11.XFlush(handle)
    finally:
        x11.XCloseDisplay(handle)
