"""Pictures of the runtime's data for people: BEV scenes, camera views with boxes, mosaics.

ROS-free; OpenCV drawing on BGR ``(H, W, 3) uint8`` images. Data in, image out: these modules
never compute geometry beyond mapping metres to pixels and calling ``Rig.project``.
"""

from visualization.bev_view import BevStyle, BevView
from visualization.camera_view import draw_boxes_on_camera
from visualization.mosaic import mosaic

__all__ = ["BevStyle", "BevView", "draw_boxes_on_camera", "mosaic"]
