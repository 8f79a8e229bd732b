# Zero-shot moderation in the style of the OpenAI CLIP README: score each image against
# "unsafe" and "safe" prompts, softmax over the prompts, flag an image when an unsafe prompt wins.
#   - the test rewrites `import clip` (to `import clip_rs as clip` for clip-rs),
#   - MODEL and IMAGES (image paths) are injected.
# Results: text, probs, unsafe, flagged.
import torch
import clip
from PIL import Image

device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load(MODEL, device=device)

labels = ["a violent image", "a sexually explicit image", "a safe image", "a photo of everyday life"]
unsafe_labels = 2  # the first two labels are the unsafe ones

image = torch.stack([preprocess(Image.open(p)) for p in IMAGES]).to(device)
text = clip.tokenize(labels).to(device)

with torch.no_grad():
    image_features = model.encode_image(image)
    text_features = model.encode_text(text)

image_features /= image_features.norm(dim=-1, keepdim=True)
text_features /= text_features.norm(dim=-1, keepdim=True)
probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)
unsafe = probs[:, :unsafe_labels].sum(dim=-1)
flagged = probs.argmax(dim=-1) < unsafe_labels

for path, p, f in zip(IMAGES, unsafe, flagged):
    print(f"{'FLAGGED' if f else 'ok':>7s}  unsafe={p.item():.3f}  {path}")
