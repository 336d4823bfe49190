"""The models photokit knows about: what each file is, where it comes from, and what it unlocks.

No checksum here is invented. Where the publisher gives none, ``sha256`` is None and photokit records the
SHA-256 of the file the user installed (``models verify`` then checks against that). torchvision's file
names carry the first 8 hex digits of the file's SHA-256 (torchvision checks them the same way), so the
LPIPS backbones are checked against that prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATOR = "generator"
LPIPS = "lpips"
FACE_RECOGNITION = "face-recognition"

FACENET_VGGFACE2 = "facenet-vggface2"  # the optional 512-D face descriptor's weights

# Where a model file lives once installed.
IN_STORE = "store"  # settings.models_dir/<subdir>/
TORCH_HUB = "torch-hub"  # $TORCH_HOME/hub/checkpoints: where torchvision (and so lpips) looks
TORCH_CHECKPOINTS = "torch-checkpoints"  # $TORCH_HOME/checkpoints: where facenet-pytorch looks


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    kind: str
    filename: str  # the installed file's name
    title: str
    unlocks: str
    get_it: str  # where a user gets the file when photokit cannot download it
    url: str | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    location: str = IN_STORE
    resolution: int | None = None  # generators: the resolution the file must have
    required: bool = True  # False: optional extras
    # torch state-dict keys a valid file must contain (LPIPS backbones, face recognition)
    expect_keys: tuple[str, ...] = ()
    # ...and the shapes some of them must have (a file of another network with the same key names is refused)
    expect_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def shape_problem(self, state: dict) -> str | None:
        """Which expected tensor of a loaded state dict has the wrong shape (None: all are right)."""
        for key, shape in self.expect_shapes:
            found = tuple(getattr(state.get(key), "shape", ()))
            if found != shape:
                return f"'{key}' has shape {list(found)}, expected {list(shape)}"
        return None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "unlocks": self.unlocks,
            "url": self.url,
            "catalog_sha256": self.sha256,
            "catalog_sha256_prefix": self.sha256_prefix,
            "catalog_size": self.size,
            "get_it": self.get_it,
            "required": self.required,
        }


_NV = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="ffhq-1024",
        kind=GENERATOR,
        filename="ffhq-1024.safetensors",
        title="StyleGAN2 FFHQ 1024 px generator (NVIDIA stylegan2-ada-pytorch ffhq.pkl)",
        unlocks="personal priors and face restoration at 1024 px (MyStyle's base generator; a GPU is advised)",
        url=f"{_NV}/ffhq.pkl",
        get_it=f"{_NV}/ffhq.pkl (NVIDIA, Nvidia Source Code License-NC); rosinality's "
        "stylegan2-ffhq-config-f.pt also works, installed from the file",
        resolution=1024,
    ),
    CatalogEntry(
        name="ffhq-256",
        kind=GENERATOR,
        filename="ffhq-256.safetensors",
        title="StyleGAN2 FFHQ 256 px generator (NVIDIA paper256 config)",
        unlocks="personal priors and face restoration at 256 px (about 10x cheaper than 1024 px; the CPU choice)",
        url=f"{_NV}/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
        get_it=f"{_NV}/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl (NVIDIA); any 256 px "
        "FFHQ StyleGAN2 in rosinality or NVIDIA format, installed from the file",
        resolution=256,
    ),
    CatalogEntry(
        name="lpips-alex",
        kind=LPIPS,
        filename="alexnet-owt-7be5be79.pth",
        title="torchvision AlexNet ImageNet weights (LPIPS-Alex backbone)",
        unlocks="LPIPS(AlexNet) + MSE loss for prior tuning and restoration (without it: the MSE loss, lower quality)",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        sha256_prefix="7be5be79",
        location=TORCH_HUB,
        get_it="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth (torchvision)",
        expect_keys=("features.0.weight", "classifier.6.weight"),
    ),
    CatalogEntry(
        name="lpips-vgg",
        kind=LPIPS,
        filename="vgg16-397923af.pth",
        title="torchvision VGG16 ImageNet weights (LPIPS-VGG backbone)",
        unlocks="LPIPS(VGG16) loss for W inversion of anchors (PTI's and NVIDIA's projector choice)",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        sha256_prefix="397923af",
        location=TORCH_HUB,
        get_it="https://download.pytorch.org/models/vgg16-397923af.pth (torchvision)",
        expect_keys=("features.0.weight", "classifier.6.weight"),
    ),
    CatalogEntry(
        name=FACENET_VGGFACE2,
        kind=FACE_RECOGNITION,
        filename="20180402-114759-vggface2.pt",
        title="facenet-pytorch InceptionResnetV1 VGGFace2 weights (optional)",
        unlocks="optional 512-D face descriptors (the facenet512 descriptor kind; photokit's default "
        "descriptors are dlib's 128-D ones, which ship with face-recognition-models)",
        url="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        location=TORCH_CHECKPOINTS,
        get_it="https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
        required=False,
        expect_keys=("conv2d_1a.conv.weight", "last_linear.weight", "last_bn.running_var"),
        # InceptionResnetV1 (facenet-pytorch): a 3-channel stem and a 1792 -> 512 embedding layer
        expect_shapes=(("conv2d_1a.conv.weight", (32, 3, 3, 3)), ("last_linear.weight", (512, 1792))),
    ),
)

# Face generators in order of preference for priors and restoration (highest quality first).
GENERATOR_PREFERENCE = ("ffhq-1024", "ffhq-256")


def catalog_entry(name: str, catalog: tuple[CatalogEntry, ...] = CATALOG) -> CatalogEntry:
    from photokit.errors import PhotokitError, Remedy

    for entry in catalog:
        if entry.name == name:
            return entry
    raise PhotokitError(
        f"unknown model '{name}': known models are {', '.join(e.name for e in catalog)}", Remedy.INSTALL_DIRECTION
    )
