#:property PublishAot=false
// Zips a folder keeping Unix permissions (the handler's executable bit must survive into the
// deployment package). Usage: dotnet run scripts/zip.cs -- <folder> <zip>
using System.IO.Compression;

var (source, target) = (Path.GetFullPath(args[0]), Path.GetFullPath(args[1]));
File.Delete(target);
// On Unix, ZipFile stores each file's permission bits in the entry's external attributes.
ZipFile.CreateFromDirectory(source, target, CompressionLevel.Optimal, includeBaseDirectory: false);
Console.WriteLine($"Zipped {source} to {target}");
