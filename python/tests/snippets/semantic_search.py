# Semantic search in the style of the OpenAI CLIP README: embed several images, embed a text
# query, rank the images by cosine similarity and keep the top k.
#   - the test rewrites `import clip` (to `import clip_rs as clip` for clip-rs),
#   - MODEL, IMAGES (image paths) and QUERY (a text) are injected.
# Results: text, image_features, text_features, scores, values, indices.
import torch
import clip
from PIL import Image

device = "cuda" if torch.cuda.is_available() else "cpu"
model, preprocess = clip.load(MODEL, device=device)

images = torch.cat([preprocess(Image.open(p)).unsqueeze(0) for p in IMAGES]).to(device)
text = clip.tokenize([QUERY]).to(device)

with torch.no_grad():
    image_features = model.encode_image(images)
    text_features = model.encode_text(text)

image_features /= image_features.norm(dim=-1, keepdim=True)
text_features /= text_features.norm(dim=-1, keepdim=True)
scores = (text_features @ image_features.T).squeeze(0)
values, indices = scores.topk(3)

for value, index in zip(values, indices):
    print(f"{value.item():.4f}  {IMAGES[index]}")
