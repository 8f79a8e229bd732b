# A batch of images in the style of the OpenAI CLIP README: stack the preprocessed images into one
# tensor, then the README's `model(image, text)` and softmax, plus the raw image features.
#   - the test rewrites `import clip` (to `import clip_rs as clip` for clip-rs),
#   - MODEL, IMAGES (image paths, every committed good fixture: every Pillow mode) and CLASSES
#     (label texts) are injected.
# Results: text, image_features, logits_per_image, logits_per_text, probs.
import torch
import clip
from PIL import Image

device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load(MODEL, device=device)

paths = IMAGES
image = torch.stack([preprocess(Image.open(p)) for p in paths]).to(device)
text = clip.tokenize(CLASSES).to(device)

with torch.no_grad():
    image_features = model.encode_image(image)
    logits_per_image, logits_per_text = model(image, text)
    probs = logits_per_image.softmax(dim=-1).cpu().numpy()

for path, p in zip(paths, probs):
    print(path, CLASSES[p.argmax()], p.max())
