hosts after=files banger
